/**
 * The floor of the logins benchmark: the same stored logins, read with UserStore.allLogins
 * from the same store, connected through the same adapter with the same concurrency by a
 * hand-written loop, their sessions held in a plain Map by login id. No states, no
 * per-login context (one shared object), no backoff, no users told anything.
 * `sessionsOnly` then keeps the sessions in an array and drops the Map: what is left is the
 * adapter's own session objects, which the benchmark subtracts from both sides; `dropAll`
 * drops them too, for the floor's baseline (its code compiled and its store opened, as the
 * Bridge's baseline is).
 */
import type { CallContext, RemoteSession, SessionContext } from "../../src/adapter/index.js";
import { silentLogger } from "../../src/common/logger.js";
import { openStore } from "../../src/store/index.js";
import { UserStore } from "../../src/users/user-store.js";
import type { LoginsChildConfig, LoginsRun } from "../lib/logins-common.js";
import { settledMemorySnapshot } from "../lib/settled-memory.js";
import { serve } from "../lib/rpc.js";
import { idleLoginsAdapter } from "./idle-logins-adapter.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as LoginsChildConfig;
const store = await openStore(cfg.store, { prefix: cfg.prefix });
const users = new UserStore(store);
const adapter = idleLoginsAdapter(cfg.latency ? { latency: cfg.latency } : {});
const ctx = {} as SessionContext;
const call: CallContext = { signal: new AbortController().signal, log: silentLogger() };
let sessions: Map<string, RemoteSession> | undefined;
let kept: RemoteSession[] | undefined;

async function run(): Promise<LoginsRun> {
  const t0 = performance.now();
  const map = new Map<string, RemoteSession>();
  const waiting: Array<() => void> = [];
  const pending: Array<Promise<void>> = [];
  let active = 0;
  for await (const login of users.allLogins()) {
    if (active >= cfg.concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    pending.push(
      adapter.logins.connect(login, ctx, call).then((session) => {
        map.set(login.id, session);
        active--;
        waiting.shift()?.();
      }),
    );
  }
  await Promise.all(pending);
  const done = performance.now();
  if (map.size !== cfg.logins) throw new Error(`the floor connected ${map.size} of ${cfg.logins} logins`);
  sessions = map;
  return { startMs: 0, connectedMs: done - t0, connected: map.size };
}

serve(
  {
    run,
    memory: () => settledMemorySnapshot(),
    sessionsOnly: () => {
      kept = [...sessions!.values()];
      sessions = undefined;
      return kept.length;
    },
    /** Drops the sessions too: the floor's baseline, with its code run once. */
    dropAll: () => {
      kept = undefined;
      return true;
    },
  },
  {},
  () => store.close(),
);
