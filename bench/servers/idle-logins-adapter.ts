/**
 * The adapter of the logins benchmark: a logins capability whose `connect` builds an idle
 * session at once (no I/O), or after a simulated network latency. The session is about as
 * small as a real adapter's idle session: the account, its token, the context it sends
 * with and when it connected. The framework holds the sessions; this adapter keeps none of
 * its own, so every byte beyond the session objects is the framework's.
 */
import type {
  Login,
  LoginsCapability,
  RemoteNetworkAdapter,
  RemoteSession,
  SessionContext,
} from "../../src/adapter/index.js";

export class IdleSession implements RemoteSession {
  readonly connectedAt = Date.now();

  constructor(
    readonly account: string,
    readonly token: string,
    readonly ctx: SessionContext,
  ) {}

  disconnect(): Promise<void> {
    return Promise.resolve();
  }
}

export interface IdleLoginsOptions {
  /** Each connect waits a latency drawn uniformly from [minMs, maxMs] (setTimeout). */
  latency?: { minMs: number; maxMs: number };
}

/** The stored data of bench login `i`: a token, as a real adapter would keep. */
export function benchLoginData(i: number): { token: string } {
  return { token: `tok-${i.toString(36).padStart(6, "0")}-${((i * 2654435761) >>> 0).toString(36)}` };
}

/** A small deterministic generator (mulberry32): latencies repeat from run to run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The session of a login, as `connect` builds it. */
function idleConnect(
  login: Login,
  ctx: SessionContext,
  latency: IdleLoginsOptions["latency"],
  next: () => number,
): Promise<RemoteSession> {
  const token = (login.data as { token?: unknown }).token;
  if (typeof token !== "string") return Promise.reject(new Error(`login ${login.id} has no token`));
  if (!latency) return Promise.resolve(new IdleSession(login.id, token, ctx));
  const ms = latency.minMs + next() * (latency.maxMs - latency.minMs);
  return new Promise((resolve) => setTimeout(() => resolve(new IdleSession(login.id, token, ctx)), ms));
}

export function idleLoginsAdapter(
  o: IdleLoginsOptions = {},
): RemoteNetworkAdapter & { connects: number; logins: LoginsCapability } {
  const next = random(42);
  const adapter = {
    name: "bench",
    connects: 0,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    logins: {
      flows: [{ id: "token", name: "Token", description: "A token" }],
      start: () => {
        throw new Error("the logins benchmark does not log in: its logins are seeded");
      },
      connect(login: Login, ctx: SessionContext): Promise<RemoteSession> {
        adapter.connects++;
        return idleConnect(login, ctx, o.latency, next);
      },
    },
  };
  return adapter;
}
