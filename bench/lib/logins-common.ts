/**
 * What the logins benchmark and its children share: the stored logins, written through
 * UserStore (as a finished login process writes them; login `i` is remote account
 * `benchLoginId(i)` of its own Matrix user, with a token as its data), a child's config and
 * what a timed run reports.
 */
import { openStore } from "../../src/store/index.js";
import { UserStore } from "../../src/users/user-store.js";
import { benchLoginData, type IdleLoginsOptions } from "../servers/idle-logins-adapter.js";
import { BENCH_DOMAIN } from "./transactions.js";

/** What a child of the logins benchmark (a Bridge or the floor) is started with. */
export interface LoginsChildConfig {
  store: string;
  prefix: string;
  /** How many logins are stored (checked after the run). */
  logins: number;
  /** How many connects at once (the Bridge's config logins.connectConcurrency). */
  concurrency: number;
  latency?: IdleLoginsOptions["latency"];
}

/** What one timed reconnect reports (a bridge child or the floor). */
export interface LoginsRun {
  /** bridge.start() until it returned (0 for the floor). */
  startMs: number;
  /** bridge.start() (the floor: its loop's start) until every stored login was connected. */
  connectedMs: number;
  connected: number;
}

export function benchLoginId(i: number): string {
  return `account${i}`;
}

export function benchLoginUser(i: number): string {
  return `@bench_owner${i}:${BENCH_DOMAIN}`;
}

/** Writes `count` logins through UserStore; returns the seconds it took. */
export async function seedLogins(url: string, prefix: string, count: number): Promise<number> {
  const t0 = performance.now();
  const store = await openStore(url, { prefix });
  try {
    const users = new UserStore(store);
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < count; i++) {
      // UserStore serialises its writes; queueing a few hundred keeps the driver busy.
      writes.push(
        users.putLogin({
          id: benchLoginId(i),
          userId: benchLoginUser(i),
          name: `${benchLoginId(i)} on bench`,
          data: benchLoginData(i),
        }),
      );
      if (writes.length >= 256) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
  } finally {
    await store.close();
  }
  return (performance.now() - t0) / 1000;
}
