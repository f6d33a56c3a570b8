/**
 * The homeserver of the media-link benchmark, in a process of its own: it serves one large
 * file (`size` bytes, a repeated 1 MiB pattern, generated as it is sent: nothing is held)
 * at the authenticated media endpoint to the as_token, and hands every other request to a
 * FakeHomeserver (what Bridge.start needs). Reports its port.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FakeHomeserver } from "../../test/support/fake-homeserver.js";
import { serve } from "../lib/rpc.js";
import { BENCH_DOMAIN } from "../lib/transactions.js";

export interface MediaHsConfig {
  asToken: string;
  mediaId: string;
  size: number;
}

const cfg = JSON.parse(process.argv[2] ?? "{}") as MediaHsConfig;
const fake = await FakeHomeserver.start({
  asToken: cfg.asToken,
  domain: BENCH_DOMAIN,
  botLocalpart: "benchbot",
});
const PATTERN = Buffer.alloc(1024 * 1024);
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = (i * 131 + (i >> 10)) & 0xff;
const MEDIA_PATH = `/_matrix/client/v1/media/download/${BENCH_DOMAIN}/${cfg.mediaId}`;

function sendFile(res: ServerResponse): void {
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(cfg.size) });
  let sent = 0;
  const more = () => {
    while (sent < cfg.size) {
      const chunk = PATTERN.subarray(0, Math.min(PATTERN.length, cfg.size - sent));
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once("drain", more);
    }
    res.end();
  };
  res.on("close", () => (sent = cfg.size));
  more();
}

async function proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host") headers[k] = v;
  const answer = await fetch(`${fake.url}${req.url}`, {
    method: req.method!,
    headers,
    ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
  });
  res.writeHead(answer.status, { "Content-Type": answer.headers.get("content-type") ?? "application/json" });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

const server = createServer((req, res) => {
  if (req.url?.split("?")[0] === MEDIA_PATH) {
    if (req.headers.authorization !== `Bearer ${cfg.asToken}`) {
      res.writeHead(401, { "Content-Type": "application/json" });
      return void res.end('{"errcode":"M_UNKNOWN_TOKEN"}');
    }
    return sendFile(res);
  }
  proxy(req, res).catch((err: unknown) => {
    res.writeHead(500);
    res.end(String(err));
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

serve({}, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, async () => {
  server.closeAllConnections();
  server.close();
  await fake.close();
});
