// The route serving ctx.mediaLink's links (src/media/link-route.ts) on a koa app, against a
// small node:http homeserver: signature and expiry checks, byte-for-byte streaming with the
// as_token, sanitised headers, the legacy-endpoint fallback, and errors that never carry the
// homeserver's body.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import Koa from "koa";
import { silentLogger } from "../../src/common/logger.js";
import { createMediaLinkRoute } from "../../src/media/link-route.js";
import { MediaLinks } from "../../src/media/media-links.js";

const AS_TOKEN = "as-token-that-must-stay-secret";
const FILES: Record<string, { type: string; data: Buffer }> = {
  png: { type: "image/png", data: Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 0, 255]) },
  html: { type: "text/html; charset=utf-8", data: Buffer.from("<script>alert(1)</script>") },
  svg: { type: "image/svg+xml", data: Buffer.from("<svg onload='alert(1)'/>") },
};

interface Seen {
  path: string;
  auth: string | undefined;
  range: string | undefined;
}

function serve(app: Koa): Server {
  const handle = app.callback();
  return createServer((req, res) => void handle(req, res));
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

describe("the media link route", () => {
  const seen: Seen[] = [];
  let legacyOnly = false;
  let release: (() => void) | undefined;
  /** Resolves when the homeserver's answer to the "slow" file closes. */
  let slowClosed: Promise<void> = Promise.resolve();
  let homeserver: Server;
  let bridge: Server;
  let hsUrl: string;
  let bridgeUrl: string;
  let now = Date.UTC(2026, 0, 1);
  let links: MediaLinks;

  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, "http://x");
    seen.push({ path: url.pathname, auth: req.headers.authorization, range: req.headers.range });
    const m = /^\/_matrix\/(client\/v1\/media|media\/v3)\/download\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const json = (status: number, body: object) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!m) return json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
    if (m[1] === "client/v1/media" && legacyOnly)
      return json(404, { errcode: "M_UNRECOGNIZED", error: "no" });
    if (req.headers.authorization !== `Bearer ${AS_TOKEN}`) return json(401, { errcode: "M_MISSING_TOKEN" });
    const id = m[3]!;
    if (id === "boom") {
      res.writeHead(500, { "Content-Type": "text/html" });
      return res.end("<html>homeserver stack trace</html>");
    }
    if (id === "slow") {
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": "8" });
      res.write("first");
      release = () => res.end("end");
      slowClosed = new Promise((resolve) => res.once("close", resolve));
      return;
    }
    if (id === "cut") {
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": "100" });
      res.write("only part of it");
      setImmediate(() => res.destroy());
      return;
    }
    const file = FILES[id];
    if (!file) return json(404, { errcode: "M_NOT_FOUND", error: "homeserver says: no such media" });
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, {
        "Content-Type": file.type,
        "Content-Range": `bytes ${from}-${to}/${file.data.length}`,
        "Content-Length": String(to - from + 1),
        "Accept-Ranges": "bytes",
      });
      return res.end(file.data.subarray(from, to + 1));
    }
    res.writeHead(200, { "Content-Type": file.type, "Content-Length": String(file.data.length) });
    res.end(req.method === "HEAD" ? undefined : file.data);
  };

  before(async () => {
    homeserver = createServer(answer);
    hsUrl = await listen(homeserver);
    const app = new Koa();
    const route = createMediaLinkRoute({
      signer: new MediaLinks({ publicUrl: "http://unused", linkKey: "k".repeat(20), ttlMs: 1 }).signer,
      homeserverUrl: hsUrl,
      asToken: AS_TOKEN,
      log: silentLogger(),
      timeoutMs: 2000,
      now: () => now,
    });
    app.use(route);
    app.use((ctx) => {
      ctx.body = "next";
    });
    bridge = serve(app);
    bridgeUrl = await listen(bridge);
    links = new MediaLinks({ publicUrl: bridgeUrl, linkKey: "k".repeat(20), ttlMs: 60_000, now: () => now });
  });
  after(() => {
    bridge.closeAllConnections();
    homeserver.closeAllConnections();
    bridge.close();
    homeserver.close();
  });

  const noTokenIn = async (res: Response) => {
    const text = await res.text();
    assert.ok(!text.includes(AS_TOKEN) && ![...res.headers.values()].some((v) => v.includes(AS_TOKEN)));
    return text;
  };

  it("streams the file byte for byte with the as_token, headers sanitised", async () => {
    seen.length = 0;
    const res = await fetch(links.link("mxc://example.org/png", { fileName: "cat.png" }));
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), FILES.png!.data);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("content-length"), String(FILES.png!.data.length));
    assert.equal(
      res.headers.get("content-disposition"),
      `inline; filename="cat.png"; filename*=UTF-8''cat.png`,
    );
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.match(res.headers.get("content-security-policy")!, /^sandbox/);
    assert.deepEqual(seen, [
      {
        path: "/_matrix/client/v1/media/download/example.org/png",
        auth: `Bearer ${AS_TOKEN}`,
        range: undefined,
      },
    ]);
  });

  it("serves HTML and SVG as application/octet-stream attachments", async () => {
    for (const id of ["html", "svg"]) {
      const res = await fetch(links.link(`mxc://example.org/${id}`, { fileName: `x.${id}` }));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.match(res.headers.get("content-disposition")!, /^attachment; filename="x\./);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), FILES[id]!.data);
    }
  });

  it("pipes bytes through as they come, not after the whole file", { timeout: 5000 }, async () => {
    const res = await fetch(links.link("mxc://example.org/slow"));
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value as Uint8Array).toString(), "first"); // the homeserver has not finished
    release!();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += Buffer.from(r.value).toString();
    assert.equal(rest, "end");
  });

  it("closes the download from the homeserver when the client goes away", { timeout: 5000 }, async () => {
    const abort = new AbortController();
    const res = await fetch(links.link("mxc://example.org/slow"), { signal: abort.signal });
    const reader = res.body!.getReader();
    assert.equal(Buffer.from((await reader.read()).value as Uint8Array).toString(), "first");
    abort.abort();
    await slowClosed; // the homeserver's side of the download closed without sending the rest
    release = undefined;
  });

  it("breaks the client's download off when the homeserver's breaks off", async () => {
    const res = await fetch(links.link("mxc://example.org/cut"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "100");
    await assert.rejects(res.arrayBuffer(), /terminated/);
  });

  it("answers 404 for a changed signature and 410 once expired, without asking the homeserver", async () => {
    seen.length = 0;
    const link = links.link("mxc://example.org/png");
    const parts = link.split("/");
    const sig = parts.at(-2)!;
    parts[parts.length - 2] = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    const forged = await fetch(parts.join("/"));
    assert.equal(forged.status, 404);
    assert.equal(await noTokenIn(forged), "Not found\n");
    now += 61_000;
    try {
      const expired = await fetch(link);
      assert.equal(expired.status, 410);
      assert.equal(await expired.text(), "This link has expired\n");
      assert.equal(expired.headers.get("cache-control"), "no-store");
    } finally {
      now -= 61_000;
    }
    assert.equal((await fetch(`${bridgeUrl}/_bridgekit/media/v1/`)).status, 404);
    assert.deepEqual(seen, []);
  });

  it("answers 404 for a file the homeserver lacks and 502 for its other errors, never with its body", async () => {
    const missing = await fetch(links.link("mxc://example.org/nope"));
    assert.equal(missing.status, 404);
    assert.equal(await noTokenIn(missing), "Not found\n");
    const boom = await fetch(links.link("mxc://example.org/boom"));
    assert.equal(boom.status, 502);
    assert.equal(boom.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await noTokenIn(boom), "The file could not be fetched\n");
  });

  it("answers 502 when the homeserver is unreachable", async () => {
    const app = new Koa();
    app.use(
      createMediaLinkRoute({
        signer: links.signer,
        homeserverUrl: "http://127.0.0.1:9",
        asToken: AS_TOKEN,
        log: silentLogger(),
        now: () => now,
      }),
    );
    const server = serve(app);
    const url = await listen(server);
    try {
      const res = await fetch(links.link("mxc://example.org/png").replace(bridgeUrl, url));
      assert.equal(res.status, 502);
      assert.equal(await res.text(), "The file could not be fetched\n");
    } finally {
      server.close();
    }
  });

  it("falls back to /_matrix/media/v3/download on 404 M_UNRECOGNIZED", async () => {
    legacyOnly = true;
    seen.length = 0;
    try {
      const res = await fetch(links.link("mxc://example.org/png"));
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), FILES.png!.data);
      assert.deepEqual(
        seen.map((s) => s.path),
        ["/_matrix/client/v1/media/download/example.org/png", "/_matrix/media/v3/download/example.org/png"],
      );
    } finally {
      legacyOnly = false;
    }
  });

  it("answers HEAD and passes Range on, 206 back", async () => {
    const head = await fetch(links.link("mxc://example.org/png"), { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(FILES.png!.data.length));
    assert.equal(await head.text(), "");
    const part = await fetch(links.link("mxc://example.org/png"), { headers: { Range: "bytes=2-4" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 2-4/${FILES.png!.data.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), FILES.png!.data.subarray(2, 5));
  });

  it("refuses other methods and leaves other paths to the next middleware", async () => {
    const post = await fetch(links.link("mxc://example.org/png"), { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal(await (await fetch(`${bridgeUrl}/_bridgekit/other`)).text(), "next");
  });
});
