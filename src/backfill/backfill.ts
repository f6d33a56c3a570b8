/**
 * History backfill: when a portal is made, and when the adapter (or a login's session) says a
 * room had a gap (`ctx.backfill`), the remote messages the portal missed are fetched with
 * `fetchHistory`, filtered and bounded (config backfill), and queued in the room's outbox
 * AHEAD of what is queued there, so they reach Matrix oldest first, with their remote
 * times, before the room's live messages.
 *
 * How it stays in order, without loss or duplicates:
 * - A request is a task in the store (HistoryStore) before `request` resolves. The room's
 *   outbox drain loop runs the task before it peeks its next item (OutboxWorker `before`),
 *   so nothing of the room is in flight meanwhile and everything queued waits behind it.
 * - The fetched messages are prepended to the outbox in one write, then the task is deleted.
 *   A crash before the prepend fetches again; a crash between them queues the batch twice,
 *   and delivery sends a remote id only once (the message map, see RemoteDelivery).
 * - The anchor (the newest remote message delivered into the portal) is where a gap fill
 *   starts; delivery advances it.
 */
import type {
  FetchHistory,
  HistoryMessage,
  HistoryQuery,
  Portal,
  RemoteNetworkAdapter,
  RemoteProfile,
  RemoteSession,
} from "../adapter/adapter.js";
import { ConcurrencyLimit } from "../appservice/concurrency-limit.js";
import type { Logger } from "../common/logger.js";
import type { BridgeConfig } from "../config/types.js";
import type { Attachments } from "../media/attachments.js";
import type { JsonValue } from "../store/json.js";
import type { MessageMap } from "../store/message-map.js";
import type { Outbox } from "../store/outbox.js";
import { portalKey } from "../store/portal-store.js";
import type { Store } from "../store/store.js";
import type { OutboxAction } from "../bridge/outbox-payload.js";
import { HistoryStore, type BackfillTask } from "./history-store.js";
import { selectHistory } from "./select.js";

/** Fetch attempts per task before the room goes on without its history. */
const ATTEMPTS = 3;

export interface BackfillOptions {
  config: BridgeConfig["backfill"];
  store: Store;
  /** The remote -> Matrix actions outbox (history is prepended to it). */
  outbox: Outbox<JsonValue>;
  /** Makes sure a key's outbox is being drained (OutboxWorker.kick). */
  kick(key: string): void;
  portals: { get(remoteId: string, login?: string): Promise<Portal | null> };
  messages: Pick<MessageMap, "byRemoteId">;
  adapter: RemoteNetworkAdapter;
  /**
   * A login's session when it is connected; null when the login exists but is not connected
   * (its tasks wait for `loginConnected`); undefined when there is no such login.
   */
  sessionOf(login: string): RemoteSession | null | undefined;
  /** Throws when a remote user id cannot be a ghost (ghosts.userId). */
  checkUser(remoteId: string): void;
  attachments: Pick<Attachments, "prepare" | "discard">;
  /** ctx.setProfile. */
  setProfile(user: string, profile: RemoteProfile): Promise<void>;
  /** Settles when the adapter started; no fetch before. */
  ready(): Promise<void>;
  log: Logger;
  /** Wait after a failed fetch, doubling (default 1000 ms). */
  retryDelayMs?: number;
}

/** The login a task waits for is not connected yet. */
class LoginNotConnected extends Error {}

export class Backfill {
  private readonly history: HistoryStore;
  private readonly limit: ConcurrencyLimit;
  /** Keys whose task runs before their next outbox item. Entries leave when the task ends. */
  private readonly pendingKeys = new Set<string>();
  /** Tasks waiting for their login to connect, by login. Entries leave when it does. */
  private readonly parked = new Map<string, Set<string>>();
  /** Fetches and waits in flight: stop aborts them. */
  private readonly inFlight = new Set<AbortController>();
  private stopped = false;

  constructor(private readonly o: BackfillOptions) {
    this.history = new HistoryStore(o.store);
    this.limit = new ConcurrencyLimit(o.config.concurrency);
  }

  /** True when fetched history can be sent at all (config, and an adapter or logins that may fetch). */
  get enabled(): boolean {
    return (
      this.o.config.enabled &&
      (this.o.adapter.fetchHistory !== undefined || this.o.adapter.logins !== undefined)
    );
  }

  /** Reads the stored tasks (before the outbox worker starts, so they run first) and kicks their rooms. */
  async load(): Promise<number> {
    this.stopped = false;
    const keys = await this.history.taskKeys();
    for (const key of keys) this.pendingKeys.add(key);
    for (const key of keys) this.o.kick(key);
    return keys.length;
  }

  /**
   * Asks for a fill of a portal (its DM portal with `dm`): stored, then run before the room's
   * next outbox item. Nothing when disabled or there is no such portal.
   */
  async request(room: string, opts: { dm?: string; via?: string } = {}): Promise<void> {
    if (!this.enabled || this.stopped) return;
    if (!(await this.o.portals.get(room, opts.dm))) return;
    const key = portalKey(room, opts.dm);
    const task: BackfillTask = { room, at: Date.now() };
    if (opts.dm !== undefined) task.dm = opts.dm;
    if (opts.via !== undefined) task.via = opts.via;
    await this.history.putTask(key, task);
    this.pendingKeys.add(key);
    this.o.kick(key);
  }

  /** A portal was made: its history, fetched by its DM login or the adapter. Never rejects. */
  async portalCreated(portal: Portal): Promise<void> {
    try {
      await this.request(
        portal.remoteId,
        portal.login === undefined ? {} : { dm: portal.login, via: portal.login },
      );
    } catch (err) {
      this.o.log.error(
        { err, remoteId: portal.remoteId },
        "could not store the new portal's backfill request",
      );
    }
  }

  /** A login connected: the tasks that waited for it run. */
  loginConnected(login: string): void {
    const keys = this.parked.get(login);
    if (!keys) return;
    this.parked.delete(login);
    for (const key of keys) {
      this.pendingKeys.add(key);
      this.o.kick(key);
    }
  }

  /** True while a fill of the key waits to run (RemoteDelivery: a live item yields to it). Must not do I/O. */
  isPending(key: string): boolean {
    return this.pendingKeys.has(key);
  }

  /** OutboxWorker `before`: runs the key's task, if any. Never rejects. */
  before(key: string): Promise<void> | undefined {
    if (this.stopped || !this.pendingKeys.has(key)) return undefined;
    return this.run(key);
  }

  /** A message was delivered into the portal: it may be the new anchor. */
  delivered(key: string, remoteId: string, ts: number): Promise<void> {
    return this.history.advance(key, { remoteId, ts });
  }

  /** Aborts fetches and waits in flight; their tasks stay stored and run after a restart. */
  stop(): void {
    this.stopped = true;
    for (const abort of this.inFlight) abort.abort(new Error("the bridge is stopping"));
  }

  private async run(key: string): Promise<void> {
    try {
      await this.o.ready();
      const task = await this.history.task(key);
      if (task) {
        const outcome = await this.attempts(key, task);
        if (outcome === "stopped") return;
        if (outcome === "parked") {
          this.pendingKeys.delete(key);
          return;
        }
        await this.history.deleteTask(key);
      }
      this.pendingKeys.delete(key);
    } catch (err) {
      // The store failed (or the adapter never started): the task stays stored for the next
      // start, and the room goes on now rather than trying again in a tight loop.
      this.pendingKeys.delete(key);
      this.o.log.error({ err, key }, "backfill could not run; the room goes on without it until a restart");
    }
  }

  private async attempts(key: string, task: BackfillTask): Promise<"done" | "parked" | "stopped"> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return "stopped";
      try {
        await this.fill(key, task);
        return "done";
      } catch (err) {
        if (this.stopped) return "stopped";
        if (err instanceof LoginNotConnected) {
          const login = err.message;
          const keys = this.parked.get(login) ?? new Set<string>();
          keys.add(key);
          this.parked.set(login, keys);
          this.o.log.info({ key, login }, "backfill waits for its login to connect");
          return "parked";
        }
        if (attempt >= ATTEMPTS) {
          this.o.log.warn(
            { err, key, attempts: attempt },
            "backfill given up; the room goes on without its history",
          );
          return "done";
        }
        const delay = (this.o.retryDelayMs ?? 1_000) * 2 ** (attempt - 1);
        this.o.log.warn({ err, key, attempt, retryInMs: delay }, "backfill fetch failed; trying again");
        await this.sleep(delay);
      }
    }
  }

  /** One fetch of the task's history, queued ahead of the room's outbox. */
  private async fill(key: string, task: BackfillTask): Promise<void> {
    const portal = await this.o.portals.get(task.room, task.dm);
    if (!portal) return; // unlinked meanwhile
    const fetch = this.fetcherFor(task);
    if (!fetch) {
      this.o.log.debug({ key }, "nobody can fetch this room's history; nothing backfilled");
      return;
    }
    const anchor = await this.history.anchor(key);
    const c = this.o.config;
    const query: HistoryQuery = { limit: anchor ? c.maxAfterGap : c.maxOnCreate };
    if (anchor) query.after = anchor;
    if (c.maxAgeMs > 0) query.notBefore = Date.now() - c.maxAgeMs;
    if (query.limit === 0) return;
    const fetched = await this.limit.run(() => this.call(fetch, task.room, query, key));
    const { messages, invalid } = selectHistory(fetched, query);
    if (invalid.length > 0)
      this.o.log.warn({ key, invalid }, "fetchHistory returned malformed messages; skipped");
    const fresh: HistoryMessage[] = [];
    for (const m of messages) {
      try {
        this.o.checkUser(m.from);
      } catch (err) {
        this.o.log.warn(
          { key, remoteId: m.remoteId, err },
          "history message from an invalid remote user id; skipped",
        );
        continue;
      }
      if (!(await this.o.messages.byRemoteId(key, m.remoteId))) fresh.push(m);
    }
    const room = this.o.outbox.maxPerRoom - (await this.o.outbox.size(key));
    if (fresh.length > room) {
      this.o.log.warn(
        { key, fetched: fresh.length, room },
        "the room's outbox is nearly full; only the newest history is queued",
      );
      fresh.splice(0, fresh.length - Math.max(0, room));
    }
    if (fresh.length === 0) return;
    await this.setProfiles(fresh);
    const actions = await this.actions(task, fresh);
    try {
      await this.o.outbox.prepend(key, actions as unknown as JsonValue[]);
    } catch (err) {
      for (const a of actions) if (a.op === "send" && a.media) await this.o.attachments.discard(a.media);
      throw err;
    }
    this.o.log.info({ key, messages: fresh.length, after: anchor?.remoteId }, "history queued");
  }

  /** The fetcher of a task: its login's session (for a DM portal, only that), else the adapter's. */
  private fetcherFor(task: BackfillTask): FetchHistory | undefined {
    const login = task.dm ?? task.via;
    if (login !== undefined) {
      const session = this.o.sessionOf(login);
      if (session?.fetchHistory) return session.fetchHistory.bind(session);
      if (session === null && (task.dm !== undefined || !this.o.adapter.fetchHistory))
        throw new LoginNotConnected(login);
      if (task.dm !== undefined) return undefined;
    }
    return this.o.adapter.fetchHistory?.bind(this.o.adapter);
  }

  /** Calls fetchHistory with a time limit and a signal that stop aborts. */
  private async call(fetch: FetchHistory, room: string, query: HistoryQuery, key: string): Promise<unknown> {
    const abort = new AbortController();
    const timeoutMs = this.o.config.timeoutMs;
    const timer = setTimeout(
      () =>
        abort.abort(
          new Error(`fetchHistory of "${room}" took longer than ${timeoutMs} ms (config backfill.timeoutMs)`),
        ),
      timeoutMs,
    );
    this.inFlight.add(abort);
    try {
      return await Promise.race([
        fetch(room, query, { signal: abort.signal, log: this.o.log.child({ backfill: key }) }),
        rejectOnAbort(abort.signal),
      ]);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(abort);
    }
  }

  /** Each sender's profile once per batch (the last one given). */
  private async setProfiles(messages: HistoryMessage[]): Promise<void> {
    const profiles = new Map<string, RemoteProfile>();
    for (const m of messages) if (m.profile) profiles.set(m.from, m.profile);
    for (const [user, profile] of profiles) await this.o.setProfile(user, profile);
  }

  /** The outbox actions of the batch; attachments read into the spool now, as ctx.send does. */
  private async actions(task: BackfillTask, messages: HistoryMessage[]): Promise<OutboxAction[]> {
    const out: OutboxAction[] = [];
    for (const m of messages) {
      const action: OutboxAction = {
        op: "send",
        room: task.room,
        from: m.from,
        content: m.content,
        remoteId: m.remoteId,
        ts: m.ts,
        backfill: true,
      };
      const login = task.dm ?? task.via;
      if (login !== undefined) action.login = login;
      if (task.dm !== undefined) action.dm = true;
      if (m.replyTo !== undefined) action.replyTo = m.replyTo;
      if (m.thread !== undefined) action.thread = m.thread;
      if (m.externalUrl !== undefined) action.externalUrl = m.externalUrl;
      const content = m.content;
      if (typeof content !== "string" && content.attachment !== undefined) {
        const { attachment, ...rest } = content;
        action.content = rest;
        try {
          action.media = await this.o.attachments.prepare(attachment);
        } catch (err) {
          this.o.log.warn(
            { err, remoteId: m.remoteId },
            "a history message's file could not be read; sent without it",
          );
          action.content = { ...rest, body: rest.body === "" ? attachment.fileName : rest.body };
        }
      }
      out.push(action);
    }
    return out;
  }

  private sleep(ms: number): Promise<void> {
    const abort = new AbortController();
    this.inFlight.add(abort);
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.inFlight.delete(abort);
        resolve();
      };
      const timer = setTimeout(done, ms);
      abort.signal.addEventListener("abort", done, { once: true });
    });
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
  });
}
