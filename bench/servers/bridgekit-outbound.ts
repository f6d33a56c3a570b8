/**
 * matrix-bridgekit sending remote messages into Matrix: a whole Bridge with the counting
 * adapter on a sqlite store, against a homeserver at `hsUrl` (the fake one or a real
 * Synapse). `send` has the adapter call `ctx.send` for a set of (ghost, room) pairs, waits
 * until the durable outbox delivered everything (`bridge.flush()`), and reports the time and
 * the HTTP calls the HomeserverClient made (counted with the Bridge's `onRequest` option).
 */
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import type { Registration } from "../../src/registration/index.js";
import { openStore } from "../../src/store/index.js";
import { benchConfig } from "../lib/bridge-config.js";
import { callKind } from "../lib/call-kinds.js";
import { serve } from "../lib/rpc.js";
import { CountingAdapter } from "./counting-adapter.js";

interface Config {
  registration: Registration;
  hsUrl: string;
  domain: string;
  store: string;
  prefix: string;
  port: number;
}

export interface SendArgs {
  rooms: number;
  ghosts: number;
  messages: number;
  label: string;
}

export interface SendResult {
  messages: number;
  seconds: number;
  calls: number;
  byKind: Record<string, number>;
}

const cfg = JSON.parse(process.argv[2] ?? "{}") as Config;
const store = await openStore(cfg.store, { prefix: cfg.prefix });
const adapter = new CountingAdapter();
const calls = new Map<string, number>();
const bridge = new Bridge({
  config: benchConfig({ hsUrl: cfg.hsUrl, domain: cfg.domain, port: cfg.port, store: cfg.store }),
  registration: cfg.registration,
  adapter,
  store,
  logger: silentLogger(),
  onRequest: (info) => {
    const kind = callKind(info.method, info.path);
    calls.set(kind, (calls.get(kind) ?? 0) + 1);
  },
});
await bridge.start();

/** Message i goes from ghost (i / rooms) % ghosts into room i % rooms: every pair in turn. */
async function send(a: SendArgs): Promise<SendResult> {
  const ctx = adapter.ctx;
  if (!ctx) throw new Error("the adapter was not started");
  calls.clear();
  const t0 = performance.now();
  const perRoom = Array.from({ length: a.rooms }, (_, room) => async () => {
    for (let i = room; i < a.messages; i += a.rooms) {
      const ghost = Math.floor(i / a.rooms) % a.ghosts;
      await ctx.send(`room${room}`, `user${ghost}`, `${a.label} message ${i}`);
    }
  });
  await Promise.all(perRoom.map((f) => f()));
  await bridge.flush();
  const seconds = (performance.now() - t0) / 1000;
  const byKind = Object.fromEntries(calls);
  const total = [...calls.values()].reduce((s, n) => s + n, 0);
  return { messages: a.messages, seconds, calls: total, byKind };
}

/** The Matrix room ids of the portals `room0..room{n-1}`, for the naive anchor. */
async function roomIds(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = await bridge.portals.get(`room${i}`);
    if (!p) throw new Error(`no portal for room${i}`);
    out.push(p.roomId);
  }
  return out;
}

serve({ send, roomIds }, { port: bridge.listeningPort }, async () => {
  await bridge.stop();
  await store.close();
});
