/**
 * The floor: a bare node:http server that checks the token, parses the JSON body, counts the
 * events and answers 200 `{}`. Nothing durable, no routing: the fastest an application
 * service in Node can acknowledge a transaction.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { memorySnapshot } from "../lib/memory.js";
import { serve } from "../lib/rpc.js";

const { hsToken } = JSON.parse(process.argv[2] ?? "{}") as { hsToken: string };
let count = 0;
const expected = `Bearer ${hsToken}`;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    if (req.headers.authorization !== expected) {
      res.writeHead(403, { "Content-Type": "application/json" }).end('{"errcode":"M_FORBIDDEN"}');
      return;
    }
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { events?: unknown[] };
      count += body.events?.length ?? 0;
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    } catch {
      res.writeHead(400, { "Content-Type": "application/json" }).end('{"errcode":"M_NOT_JSON"}');
    }
  });
});
server.listen(0, "127.0.0.1", () => {
  serve(
    { count: () => count, memory: () => memorySnapshot() },
    { port: (server.address() as AddressInfo).port },
    () => new Promise<void>((resolve) => server.close(() => resolve())),
  );
});
