/**
 * The adapter a reliability child process runs. It makes its portals at start, and then:
 *
 * - Matrix -> remote: every event handed to it is recorded in the record file as
 *   `S <eventId>` when the handler starts and `D <eventId>` when it is about to return
 *   successfully. The inbox records an event as handled only after its handler returned,
 *   and starts the room's next event only once that record is durable, so the pair
 *   brackets the one window in which a kill may legitimately cause a redelivery.
 *   With `failures`, the events `failsOn` picks fail instead: `R <eventId>` then a
 *   RetryableError (the first `times` tries, counted over every process, so a restart does
 *   not make an event fail forever), or `P <eventId>` then a PermanentError (always: it
 *   must become a dead letter and never be handled). `handlerMs` makes each handler take
 *   that long (a slow remote network).
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
// From the package index: what an adapter author imports.
import { PermanentError, RetryableError } from "../../../src/index.js";
import { readRecords, RecordFile } from "./record-file.js";

export interface RecordingAdapterOptions {
  recordPath: string;
  /** Remote room ids; a portal is made for each at start. */
  rooms: string[];
  /** Messages to send remote -> Matrix over the life of the test (0: none). */
  sendTotal?: number;
  /** Remote users the sends come from, round-robin. */
  senders?: string[];
  /**
   * A pause after each send, in ms (default none): a remote network delivers messages over
   * time, and without it the whole plan can be sent between two of the test's kills.
   */
  sendPauseMs?: number;
  /** How long each Matrix -> remote handler takes, in ms (default: it yields once). */
  handlerMs?: number;
  /** Events that fail (those `failsOn(eventId, every)` picks). */
  failures?: { kind: "retryable"; every: number; times: number } | { kind: "permanent"; every: number };
}

/**
 * Whether failure rule `every` picks an event: about one event in `every`, by a hash of its
 * id, so the test knows which without asking the child.
 */
export function failsOn(eventId: string, every: number): boolean {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < eventId.length; i++) h = Math.imul(h ^ eventId.charCodeAt(i), 0x01000193) >>> 0;
  return h % every === 0;
}

/** The message of the PermanentError a picked event fails with (its dead letter's userMessage). */
export const PERMANENT_MESSAGE = "the reliability adapter refuses this event";

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
  /** Retryable failures so far per event id, over every process (R lines). */
  private readonly failed = new Map<string, number>();

  constructor(
    private readonly o: RecordingAdapterOptions,
    /** Called when the send loop fails: the child reports it and exits non-zero. */
    private readonly onFatal: (err: unknown) => void,
  ) {
    if (o.failures?.kind === "retryable") {
      for (const line of readRecords(o.recordPath)) {
        if (line.startsWith("R ")) this.failed.set(line.slice(2), (this.failed.get(line.slice(2)) ?? 0) + 1);
      }
    }
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

  /**
   * Records the start, yields (so a kill can land inside the handler), then records the end:
   * success, or the failure the rule picks for this event.
   */
  private async handle(eventId: string): Promise<void> {
    this.records.append(`S ${eventId}`);
    const ms = this.o.handlerMs ?? 0;
    if (ms > 0) await new Promise<void>((resolve) => setTimeout(resolve, ms));
    else await new Promise<void>((resolve) => setImmediate(resolve));
    const rule = this.o.failures;
    if (rule && failsOn(eventId, rule.every)) {
      if (rule.kind === "permanent") {
        this.records.append(`P ${eventId}`);
        throw new PermanentError(PERMANENT_MESSAGE);
      }
      const failures = this.failed.get(eventId) ?? 0;
      if (failures < rule.times) {
        this.failed.set(eventId, failures + 1);
        this.records.append(`R ${eventId}`);
        throw new RetryableError(`the remote network is busy (try ${failures + 1})`);
      }
    }
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
      if (this.o.sendPauseMs) await new Promise((r) => setTimeout(r, this.o.sendPauseMs));
    }
    if (!this.stopped) this.records.append("F");
  }
}
