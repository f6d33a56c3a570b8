/**
 * The floor of the media-link benchmark: a hand-written node:http proxy that answers every
 * request by streaming the benchmark's file from the homeserver (as_token, node:http, piped);
 * no framework, no checks. What Node itself costs in memory and speed for the same stream.
 */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { rssPeakHandlers } from "../lib/rss-peak.js";
import { serve } from "../lib/rpc.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as { mediaUrl: string; asToken: string };
const server = createServer((req, res) => {
  request(cfg.mediaUrl, { headers: { Authorization: `Bearer ${cfg.asToken}` } }, (up) => {
    res.writeHead(up.statusCode ?? 502, {
      "Content-Type": up.headers["content-type"] ?? "application/octet-stream",
      ...(up.headers["content-length"] ? { "Content-Length": up.headers["content-length"] } : {}),
    });
    up.pipe(res);
    res.on("close", () => up.destroy());
  })
    .on("error", () => res.writeHead(502).end())
    .end();
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const rss = rssPeakHandlers();
serve(
  { baseline: rss.baseline, peak: rss.peak },
  { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.bin` },
  () => {
    rss.stop();
    server.closeAllConnections();
    server.close();
    return Promise.resolve();
  },
);
