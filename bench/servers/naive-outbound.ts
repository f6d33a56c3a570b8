/**
 * The outbound anchor: a naive bridge doing what bridges on matrix-appservice-bridge do for
 * a ghost's message, with only an in-memory cache of who is registered and joined (lost on
 * restart): register the ghost (M_USER_IN_USE is fine), join the room, send. After a restart
 * that is three calls for each ghost's first message in each room. Nothing is durable: a
 * crash loses what was not yet sent. Answers the homeserver's transactions with 200 so a
 * real Synapse is not left retrying. Same concurrency as bridgekit's client (16).
 */
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import PQueue from "p-queue";
import { callKind } from "../lib/call-kinds.js";
import { serve } from "../lib/rpc.js";
import type { SendArgs, SendResult } from "./bridgekit-outbound.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as {
  asToken: string;
  hsUrl: string;
  domain: string;
  port: number;
  roomIds: string[];
};
/** Registrations done or in flight (concurrent first messages of one ghost share one call). */
const registered = new Map<string, Promise<void>>();
const joined = new Set<string>();
const calls = new Map<string, number>();
const queue = new PQueue({ concurrency: 16 });
const txnPrefix = randomBytes(6).toString("base64url");
let txn = 0;

async function call(method: string, path: string, userId: string, body: unknown): Promise<Response> {
  const kind = callKind(method, path);
  calls.set(kind, (calls.get(kind) ?? 0) + 1);
  const url = `${cfg.hsUrl}${path}${userId ? `?user_id=${encodeURIComponent(userId)}` : ""}`;
  return queue.add(() =>
    fetch(url, {
      method,
      headers: { Authorization: `Bearer ${cfg.asToken}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

async function ok(res: Response, what: string, allowed?: string): Promise<void> {
  if (res.ok) {
    await res.arrayBuffer();
    return;
  }
  const body = (await res.json().catch(() => ({}))) as { errcode?: string };
  if (allowed !== undefined && body.errcode === allowed) return;
  throw new Error(`${what} failed: ${res.status} ${body.errcode}`);
}

async function sendAs(ghost: string, roomId: string, text: string): Promise<void> {
  const userId = `@bench_${ghost}:${cfg.domain}`;
  let registering = registered.get(userId);
  if (!registering) {
    registering = call("POST", "/_matrix/client/v3/register", "", {
      type: "m.login.application_service",
      username: `bench_${ghost}`,
      inhibit_login: true,
    }).then((res) => ok(res, `register ${userId}`, "M_USER_IN_USE"));
    registered.set(userId, registering);
  }
  await registering;
  if (!joined.has(`${roomId} ${userId}`)) {
    await ok(await call("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, userId, {}), "join");
    joined.add(`${roomId} ${userId}`);
  }
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txnPrefix}${++txn}`;
  await ok(await call("PUT", path, userId, { msgtype: "m.text", body: text }), "send");
}

async function send(a: SendArgs): Promise<SendResult> {
  calls.clear();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: a.rooms }, async (_, room) => {
      for (let i = room; i < a.messages; i += a.rooms) {
        const ghost = Math.floor(i / a.rooms) % a.ghosts;
        await sendAs(`user${ghost}`, cfg.roomIds[room]!, `${a.label} message ${i}`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const total = [...calls.values()].reduce((s, n) => s + n, 0);
  return { messages: a.messages, seconds, calls: total, byKind: Object.fromEntries(calls) };
}

const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"));
});
server.listen(cfg.port, "127.0.0.1", () => {
  serve({ send }, { port: cfg.port }, () => new Promise<void>((resolve) => server.close(() => resolve())));
});
