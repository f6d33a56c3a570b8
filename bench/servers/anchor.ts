/**
 * The anchor: matrix-appservice 2.0.0 (express), the library most existing bridges build on,
 * with an `on("event")` counter. Note that it answers 200 as soon as it has emitted the
 * events synchronously: handlers that do asynchronous work run after the acknowledgement,
 * and it remembers only the last transaction id (no durable journal).
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { AppService } from "matrix-appservice";
import { memorySnapshot } from "../lib/memory.js";
import { serve } from "../lib/rpc.js";

const { hsToken } = JSON.parse(process.argv[2] ?? "{}") as { hsToken: string };
let count = 0;
const as = new AppService({ homeserverToken: hsToken, httpMaxSizeBytes: 16 * 1024 * 1024 });
as.on("event", () => {
  count++;
});
await as.listen(0, "127.0.0.1", 511);
const server = (as as unknown as { server: Server }).server;
serve(
  { count: () => count, memory: () => memorySnapshot() },
  { port: (server.address() as AddressInfo).port },
  () => as.close(),
);
