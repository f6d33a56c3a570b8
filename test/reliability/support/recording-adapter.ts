/**
 * The adapter a reliability child process runs. It makes its portals at start, and then:
 *
 * - Matrix -> remote: every event handed to it is recorded in the record file as
 *   `S <eventId>` when the handler starts and `D <eventId>` when it is about to return
 *   successfully. The framework journals an event only after its handler returned, so the
 *   pair brackets the one window in which a kill may legitimately cause a redelivery.
 * - remote -> Matrix (`sendTotal` > 0): sends messages 0..sendTotal-1 round-robin over the
 *   rooms through ctx.send, recording `S <i>` before the call and `A <i>` once it resolved
 *   (accepted: the framework promises delivery from then on). After a restart it resumes
 *   after the last number it offered, so a message is never offered twice (offering it again
 *   could duplicate it for a reason that is not the framework's); one offered but not seen
 *   accepted may or may not have been stored. `F` marks the end of the plan.
 */
import type {
  BridgeContext,
  MatrixMembership,
  MatrixMessage,
  MatrixRoomChange,
  Portal,
  RemoteNetworkAdapter,
} from "../../../src/adapter/index.js";
import { readRecords, RecordFile } from "./record-file.js";

export interface RecordingAdapterOptions {
  recordPath: string;
  /** Remote room ids; a portal is made for each at start. */
  rooms: string[];
  /** Messages to send remote -> Matrix over the life of the test (0: none). */
  sendTotal?: number;
  /** Remote users the sends come from, round-robin. */
  senders?: string[];
}

/** The body of remote message number i; the test finds it on the homeserver by this. */
export const remoteBody = (i: number) => `remote message #${i}`;
export const REMOTE_BODY = /^remote message #(\d+)$/;

export class RecordingAdapter implements RemoteNetworkAdapter {
  readonly name = "rel";
  private readonly records: RecordFile;
  private ctx: BridgeContext | undefined;
  private stopped = false;
  /** The send loop, awaited by stop() so it never outlives the bridge. */
  private sending: Promise<void> | undefined;

  constructor(
    private readonly o: RecordingAdapterOptions,
    /** Called when the send loop fails: the child reports it and exits non-zero. */
    private readonly onFatal: (err: unknown) => void,
  ) {
    this.records = new RecordFile(o.recordPath);
    this.records.append(`B ${process.pid}`); // a new process: the analysis counts lifetimes by this
  }

  async start(ctx: BridgeContext): Promise<void> {
    this.ctx = ctx;
    for (const room of this.o.rooms) await ctx.portals.ensure(room, { name: `Reliability ${room}` });
    if ((this.o.sendTotal ?? 0) > 0) {
      this.sending = this.sendLoop().catch((err: unknown) => this.onFatal(err));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.sending;
  }

  async onMessage(message: MatrixMessage, _portal: Portal): Promise<string> {
    await this.handle(message.eventId);
    return `remote-${message.eventId}`;
  }

  onMembership(membership: MatrixMembership, _portal: Portal): Promise<void> {
    return this.handle(membership.eventId);
  }

  onRoomChange(change: MatrixRoomChange, _portal: Portal): Promise<void> {
    return this.handle(change.eventId);
  }

  /** Records the start, yields once (so a kill can land inside the handler), records the end. */
  private async handle(eventId: string): Promise<void> {
    this.records.append(`S ${eventId}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.records.append(`D ${eventId}`);
  }

  /** Where to resume: one after the last message an earlier process offered. */
  private resumeAt(): number {
    let next = 0;
    for (const line of readRecords(this.o.recordPath)) {
      if (line.startsWith("S ")) next = Math.max(next, Number(line.slice(2)) + 1);
    }
    return next;
  }

  private async sendLoop(): Promise<void> {
    const ctx = this.ctx!;
    const total = this.o.sendTotal ?? 0;
    const rooms = this.o.rooms;
    const senders = this.o.senders ?? ["alice"];
    for (let i = this.resumeAt(); i < total && !this.stopped; i++) {
      this.records.append(`S ${i}`);
      await ctx.send(rooms[i % rooms.length]!, senders[i % senders.length]!, remoteBody(i), {
        remoteId: `m${i}`,
      });
      this.records.append(`A ${i}`);
    }
    if (!this.stopped) this.records.append("F");
  }
}
