import type {
  CallContext,
  Login,
  LoginState,
  LoginsCapability,
  RemoteSession,
  SessionContext,
} from "../adapter/adapter.js";
import { ConcurrencyLimit } from "../appservice/concurrency-limit.js";
import type { Logger } from "../common/logger.js";
import { PermanentError } from "../inbox/errors.js";
import type { JsonValue } from "../store/json.js";
import { UnreadableSecretError } from "./user-store.js";

/** What an operator can do when stored logins cannot be opened (the start error says it). */
const FORGET_HINT =
  "Restore the key the logins were written with, or, with the bridge stopped, run `bridgekit logins list` to see which cannot be opened and `bridgekit logins forget --unreadable` to delete them (their users will have to log in again)";

/** A login as the store keeps it (src/users/user-store.ts). */
export interface StoredLogin {
  id: string;
  userId: string;
  name: string;
  data: JsonValue;
  createdAt: number;
}

/** What Logins needs of the store. */
export interface LoginRepository {
  getLogin(id: string): Promise<StoredLogin | undefined>;
  loginsOf(userId: string): Promise<StoredLogin[]>;
  putLogin(login: { id: string; userId: string; name: string; data: JsonValue }): Promise<unknown>;
  deleteLogin(id: string): Promise<boolean>;
  allLogins(): AsyncIterable<StoredLogin>;
}

/** A state as a sentence says it: "transient disconnect", "bad credentials". Pure. */
export function stateWords(state: LoginState): string {
  return state.replace(/_/g, " ");
}

/** A login's state as the user sees it. */
export interface LoginStatus {
  id: string;
  userId: string;
  name: string;
  state: LoginState;
  /** Why, for a bad or transient state. */
  message?: string;
  /** Unix ms of the last change. */
  since: number;
}

export interface LoginsOptions {
  capability: LoginsCapability;
  store: LoginRepository;
  /** The SessionContext of a login (sends tagged with it; setState and updateLogin call back here). */
  contextFor(login: LiveLogin): SessionContext;
  /** Tells a user something about their login, in their management room. Must not throw. */
  tell(userId: string, text: string): Promise<void>;
  /** The network is back for a login: rooms waiting to retry try at once (and its waiting backfills run). */
  onConnected(login: LiveLogin): void;
  log: Logger;
  /** Logins connected at once at start. */
  concurrency: number;
  /** Reconnect backoff after a failed connect: first and longest wait (default 1 s and 5 min). */
  retry?: { firstDelayMs?: number; maxDelayMs?: number };
  /** A connect call's time limit (default 60 s). */
  connectTimeoutMs?: number;
}

/**
 * One stored login while the bridge runs: its record, its session once connected, and its
 * state. Kept for every stored login (idle ones too), so it is small: no per-login timers
 * unless a reconnect is waiting, the context made on first use.
 */
export class LiveLogin implements Login {
  session: RemoteSession | undefined = undefined;
  state: LoginState = "connecting";
  message: string | undefined = undefined;
  since = Date.now();
  /** Failed connects in a row; sets the backoff. */
  failures = 0;
  retry: NodeJS.Timeout | undefined = undefined;
  /** Set by logout or stop: no reconnect, and a late connect's session is closed at once. */
  closed = false;
  /** A first connect was started (by startAll or add). */
  tried = false;
  ctx: SessionContext | undefined = undefined;

  constructor(public record: StoredLogin) {}

  get id(): string {
    return this.record.id;
  }
  get userId(): string {
    return this.record.userId;
  }
  get name(): string {
    return this.record.name;
  }
  get data(): JsonValue {
    return this.record.data;
  }

  status(): LoginStatus {
    const s: LoginStatus = {
      id: this.id,
      userId: this.userId,
      name: this.name,
      state: this.state,
      since: this.since,
    };
    if (this.message !== undefined) s.message = this.message;
    return s;
  }
}

/**
 * The logins of every user while the bridge runs: connects them at start (bounded
 * concurrency), keeps their sessions and states, reconnects with backoff after a failed
 * connect, tells users when a login goes bad, and logs out. Which login carries a user's
 * event is asked here (`connectedOf`). The store is the truth for what logins exist; this
 * holds what is live.
 */
export class Logins {
  private readonly live = new Map<string, LiveLogin>();
  /** The same logins by user, in the order they were made. */
  private readonly byUser = new Map<string, LiveLogin[]>();
  private readonly limit: ConcurrencyLimit;
  /** Connect attempts in flight: stopAll aborts them. */
  private readonly connecting = new Set<AbortController>();
  private stopped = false;

  constructor(private readonly o: LoginsOptions) {
    this.limit = new ConcurrencyLimit(o.concurrency);
  }

  /** Logins held (connected or not). */
  get size(): number {
    return this.live.size;
  }

  /**
   * Reads every stored login into memory, each "connecting", without connecting any. Once it
   * resolved, a user's events know they have a login and wait for it rather than being
   * relayed or refused (see Carriers); the Bridge lets events through only after it.
   */
  async load(): Promise<number> {
    let loaded = 0;
    try {
      for await (const record of this.o.store.allLogins()) {
        if (this.stopped) break;
        if (this.live.has(record.id)) continue;
        this.hold(new LiveLogin(record));
        loaded++;
      }
    } catch (err) {
      if (!(err instanceof UnreadableSecretError)) throw err;
      throw new UnreadableSecretError(`${err.message}. ${FORGET_HINT}`, { cause: err });
    }
    return loaded;
  }

  /**
   * Connects every loaded login not yet tried, `concurrency` at a time (loading them first
   * if `load` was not called); resolves once each has connected or failed (failures go on
   * retrying in the background). Counts what happened.
   */
  async startAll(): Promise<{ connected: number; failed: number }> {
    if (this.live.size === 0) await this.load();
    const started: Array<Promise<void>> = [];
    let connected = 0;
    let failed = 0;
    for (const login of [...this.live.values()]) {
      if (this.stopped) break;
      if (login.session || login.tried) continue;
      login.tried = true;
      // Wait for a slot before starting the next, so at most `concurrency` connects are pending.
      const wait = this.limit.acquire();
      if (wait) await wait;
      started.push(
        this.connect(login)
          .then((ok) => void (ok ? connected++ : failed++))
          .finally(() => this.limit.release()),
      );
    }
    await Promise.all(started);
    this.o.log.info({ connected, failed }, "logins connected");
    return { connected, failed };
  }

  /** Stores a finished login (or replaces its data) and connects it. Returns its state after the first try. */
  async add(userId: string, login: { id: string; name?: string; data: JsonValue }): Promise<LoginStatus> {
    const record = { id: login.id, userId, name: login.name ?? login.id, data: login.data };
    await this.o.store.putLogin(record);
    const stored = (await this.o.store.getLogin(login.id)) ?? { ...record, createdAt: Date.now() };
    const old = this.live.get(login.id);
    if (old) {
      await this.close(old, "replaced by a new login");
      this.forget(old);
    }
    const live = this.hold(new LiveLogin(stored));
    live.tried = true;
    await this.connect(live);
    return live.status();
  }

  /** The user's logins with their states, in the order they were made. */
  async of(userId: string): Promise<LoginStatus[]> {
    const stored = await this.o.store.loginsOf(userId);
    return stored.map(
      (r) =>
        this.live.get(r.id)?.status() ?? {
          id: r.id,
          userId,
          name: r.name,
          state: "connecting",
          since: r.createdAt,
        },
    );
  }

  /** A live login, if it is this user's. Must not do I/O. */
  get(loginId: string): LiveLogin | undefined {
    return this.live.get(loginId);
  }

  /**
   * The user's login to carry their events: the first connected one. Also says whether one
   * is on its way (connecting or reconnecting), so the caller can wait instead of relaying.
   * Must not do I/O: it runs for every event of a user with logins.
   */
  connectedOf(userId: string): { login?: LiveLogin; pending: boolean } {
    let pending = false;
    for (const login of this.byUser.get(userId) ?? []) {
      if (login.state === "connected" && login.session) return { login, pending };
      if (login.state === "connecting" || login.state === "transient_disconnect") pending = true;
    }
    return { pending };
  }

  /** The user's live logins, oldest first. Must not do I/O. */
  liveOf(userId: string): readonly LiveLogin[] {
    return this.byUser.get(userId) ?? [];
  }

  /** Logs one login out (the session's logout, then disconnect) and forgets it. */
  async logout(loginId: string, call: CallContext): Promise<void> {
    const live = this.live.get(loginId);
    if (live?.session?.logout) {
      try {
        await live.session.logout(call);
      } catch (err) {
        this.o.log.warn({ err, loginId }, "remote logout failed; the login is forgotten anyway");
      }
    }
    if (live) {
      await this.close(live, "logged out");
      this.forget(live);
    }
    await this.o.store.deleteLogin(loginId);
    this.o.log.info({ loginId }, "logged out");
  }

  /** A session's report (SessionContext.setState). */
  setState(login: LiveLogin, state: Exclude<LoginState, "connecting">, message?: string): void {
    if (login.closed) return;
    const was = login.state;
    this.mark(login, state, message);
    if (state === "connected") {
      login.failures = 0;
      if (was !== "connected") this.o.onConnected(login);
      return;
    }
    if (state === "bad_credentials" || state === "logged_out") {
      void this.close(login, state).then(() => this.warn(login, state, message));
    }
  }

  /**
   * SessionContext.reconnect: the session lost its connection. It is closed, and connected
   * again after the backoff of a failed connect (so a flapping network backs off too).
   */
  reconnect(login: LiveLogin, message?: string): void {
    if (login.closed || this.stopped || login.retry !== undefined) return;
    const session = login.session;
    login.session = undefined;
    login.failures++;
    this.mark(login, "transient_disconnect", message ?? "connection lost; reconnecting");
    const delay = this.backoff(login);
    this.o.log.warn({ loginId: login.id, retryInMs: delay, why: message }, "login lost its connection");
    login.retry = setTimeout(() => void this.connect(login), delay);
    login.retry.unref();
    if (session) void disconnect(session, this.o.log);
  }

  /** SessionContext.tell: a notice to the login's user in their management room. Never rejects. */
  async tell(login: LiveLogin, text: string): Promise<void> {
    if (login.closed) return;
    try {
      await this.o.tell(login.userId, text);
    } catch (err) {
      this.o.log.warn({ err, loginId: login.id }, "could not tell a login's user");
    }
  }

  /** SessionContext.updateLogin: new data or name, stored. */
  async update(login: LiveLogin, changes: { name?: string; data?: JsonValue }): Promise<void> {
    const next = { ...login.record };
    if (changes.name !== undefined) next.name = changes.name;
    if (changes.data !== undefined) next.data = changes.data;
    await this.o.store.putLogin(next);
    login.record = next;
  }

  /** Disconnects every session (the bridge stops). */
  async stopAll(): Promise<void> {
    this.stopped = true;
    for (const abort of this.connecting) abort.abort(new Error("the bridge is stopping"));
    await Promise.all([...this.live.values()].map((l) => this.close(l, "the bridge is stopping")));
  }

  /** One connect attempt; on a transient failure, schedules the next. Resolves true if connected. */
  private async connect(login: LiveLogin): Promise<boolean> {
    login.retry = undefined;
    if (login.closed || this.stopped) return false;
    this.mark(login, login.failures === 0 ? "connecting" : "transient_disconnect", login.message);
    login.ctx ??= this.o.contextFor(login);
    // One controller per attempt, aborted by its timer or by stopAll. (Not AbortSignal.any over
    // a long-lived signal: on Node 20 each call leaves a WeakRef in it for good, nodejs/node#55351.)
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error("connecting took too long")),
      this.o.connectTimeoutMs ?? 60_000,
    );
    this.connecting.add(abort);
    const call: CallContext = { signal: abort.signal, log: this.o.log.child({ loginId: login.id }) };
    try {
      const session = await this.o.capability.connect(login, login.ctx, call);
      if (login.closed || this.stopped) {
        await disconnect(session, this.o.log);
        return false;
      }
      login.session = session;
      this.setState(login, "connected");
      return true;
    } catch (err) {
      if (err instanceof PermanentError) {
        this.mark(login, "bad_credentials", err.userMessage);
        await this.warn(login, "bad_credentials", err.userMessage);
        return false;
      }
      login.failures++;
      const delay = this.backoff(login);
      this.mark(login, "transient_disconnect", "could not connect; trying again");
      this.o.log.warn({ err, loginId: login.id, retryInMs: delay }, "login could not connect");
      login.retry = setTimeout(() => void this.connect(login), delay);
      login.retry.unref();
      return false;
    } finally {
      clearTimeout(timer);
      this.connecting.delete(abort);
    }
  }

  /** The wait before the next connect, after `login.failures` failures in a row. */
  private backoff(login: LiveLogin): number {
    const first = this.o.retry?.firstDelayMs ?? 1_000;
    return Math.min(first * 2 ** (login.failures - 1), this.o.retry?.maxDelayMs ?? 300_000);
  }

  private hold(login: LiveLogin): LiveLogin {
    this.live.set(login.id, login);
    const mine = this.byUser.get(login.userId);
    if (mine) mine.push(login);
    else this.byUser.set(login.userId, [login]);
    return login;
  }

  private forget(login: LiveLogin): void {
    if (this.live.get(login.id) === login) this.live.delete(login.id);
    const rest = (this.byUser.get(login.userId) ?? []).filter((l) => l !== login);
    if (rest.length > 0) this.byUser.set(login.userId, rest);
    else this.byUser.delete(login.userId);
  }

  private mark(login: LiveLogin, state: LoginState, message?: string): void {
    if (login.state !== state) login.since = Date.now();
    login.state = state;
    login.message = message;
  }

  /** Ends a login's session; it will not reconnect. */
  private async close(login: LiveLogin, why: string): Promise<void> {
    login.closed = true;
    if (login.retry) clearTimeout(login.retry);
    login.retry = undefined;
    const session = login.session;
    login.session = undefined;
    if (session) {
      this.o.log.info({ loginId: login.id, why }, "login disconnected");
      await disconnect(session, this.o.log);
    }
  }

  private async warn(login: LiveLogin, state: LoginState, message?: string): Promise<void> {
    const what = state === "bad_credentials" ? "needs you to log in again" : "was logged out";
    await this.o.tell(
      login.userId,
      `Your login ${login.name} ${what}${message ? `: ${message}` : ""}. Send \`login\` to log in again.`,
    );
  }
}

async function disconnect(session: RemoteSession, log: Logger): Promise<void> {
  try {
    await session.disconnect();
  } catch (err) {
    log.warn({ err }, "a session's disconnect failed");
  }
}
