/**
 * The adapter of the load test's bridge child: counts what Matrix sends it (no file I/O, so
 * the bridge is what is measured) and keeps sending remote -> Matrix messages at a steady
 * pace through the durable outbox. Answers user and room queries.
 */
import type {
  BridgeContext,
  MatrixMembership,
  MatrixMessage,
  MatrixReceipt,
  MatrixRoomChange,
  MatrixTyping,
  Portal,
  PortalSpec,
  RemoteNetworkAdapter,
  RemoteProfile,
} from "../../../src/adapter/index.js";

export interface LoadAdapterOptions {
  rooms: string[];
  /** Remote sends per tick (one tick every `sendEveryMs`). */
  sendsPerTick: number;
  sendEveryMs: number;
  senders: string[];
}

export class LoadAdapter implements RemoteNetworkAdapter {
  readonly name = "rel";
  private readonly counts = {
    messages: 0,
    memberships: 0,
    roomChanges: 0,
    typing: 0,
    receipts: 0,
    sent: 0,
    userQueries: 0,
    roomQueries: 0,
  };
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly o: LoadAdapterOptions,
    private readonly onFatal: (err: unknown) => void,
  ) {}

  stats(): Record<string, number> {
    return { ...this.counts };
  }

  async start(ctx: BridgeContext): Promise<void> {
    for (const room of this.o.rooms) await ctx.portals.ensure(room, { name: `Load ${room}` });
    this.loop = this.sendLoop(ctx).catch((err: unknown) => this.onFatal(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  onMessage(_m: MatrixMessage, _p: Portal): Promise<string> {
    this.counts.messages++;
    return Promise.resolve(`r${this.counts.messages}`);
  }
  onMembership(_m: MatrixMembership, _p: Portal): Promise<void> {
    this.counts.memberships++;
    return Promise.resolve();
  }
  onRoomChange(_c: MatrixRoomChange, _p: Portal): Promise<void> {
    this.counts.roomChanges++;
    return Promise.resolve();
  }
  onTyping(_t: MatrixTyping, _p: Portal): Promise<void> {
    this.counts.typing++;
    return Promise.resolve();
  }
  onReceipt(_r: MatrixReceipt, _p: Portal): Promise<void> {
    this.counts.receipts++;
    return Promise.resolve();
  }
  queryUser(remoteId: string): Promise<RemoteProfile | null> {
    this.counts.userQueries++;
    return Promise.resolve(remoteId.startsWith("nobody") ? null : { displayName: `Load ${remoteId}` });
  }
  queryRoom(remoteId: string): Promise<PortalSpec | null> {
    this.counts.roomQueries++;
    return Promise.resolve(this.o.rooms.includes(remoteId) ? { name: `Load ${remoteId}` } : null);
  }

  private async sendLoop(ctx: BridgeContext): Promise<void> {
    let i = 0;
    while (!this.stopped) {
      for (let k = 0; k < this.o.sendsPerTick && !this.stopped; k++, i++) {
        const room = this.o.rooms[i % this.o.rooms.length]!;
        const from = this.o.senders[i % this.o.senders.length]!;
        await ctx.send(room, from, `load message ${i}`, { remoteId: `load-${i}` });
        this.counts.sent++;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.sendEveryMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
