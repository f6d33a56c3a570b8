// The media link route's download client (src/media/pooled-download.ts) against real
// loopback servers: a large body read through a few reused buffers, none overwritten while
// a write of it is pending; chunked bodies; the request it sends; small error answers; a
// response cut short, a malformed one, a refused connection, an abort; https.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpResponseError } from "../../src/media/http-response-reader.js";
import { pooledGet, type BodyTarget } from "../../src/media/pooled-download.js";

const BIG = randomBytes(8 * 1024 * 1024);

function listen(server: Server | ReturnType<typeof createNetServer>): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

/** A raw TCP server answering every connection with `answer` (then what `then` does). */
async function rawServer(answer: string | Buffer, then: (s: Socket) => void = (s) => s.end()) {
  const server = createNetServer((socket) => {
    socket.once("data", () => {
      socket.write(answer);
      then(socket);
    });
    socket.on("error", () => undefined);
  });
  const port = await listen(server);
  return { url: new URL(`http://127.0.0.1:${port}/x`), close: () => server.close() };
}

/**
 * A slow client: completes each write a little later, and checks at completion that the
 * slice still holds what it held when it was written (a reused buffer read into too early
 * would not). Records the distinct buffers the slices lived in.
 */
function slowTarget() {
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let overwritten = 0;
  let pending = 0;
  let maxPending = 0;
  const target: BodyTarget = {
    write(chunk, done) {
      const copy = Buffer.from(chunk);
      parts.push(copy);
      buffers.add(chunk.buffer);
      maxPending = Math.max(maxPending, ++pending);
      const finish = () => {
        if (!chunk.equals(copy)) overwritten++;
        pending--;
        done();
      };
      if (parts.length % 3 === 0) setTimeout(finish, 2);
      else setImmediate(finish);
      return true;
    },
  };
  return {
    target,
    buffers,
    body: () => Buffer.concat(parts),
    stats: () => ({ overwritten, buffers: buffers.size, maxPending }),
  };
}

describe("pooledGet", () => {
  let server: Server;
  let base: string;
  const seen: IncomingMessage[] = [];

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req);
      if (req.url === "/big") {
        res.writeHead(200, {
          "Content-Type": "application/octet-stream",
          "Content-Length": String(BIG.length),
        });
        return void res.end(BIG);
      }
      if (req.url === "/chunked") {
        res.writeHead(200, { "Content-Type": "text/plain" });
        for (let i = 0; i < 100; i++) res.write(BIG.subarray(i * 10_000, (i + 1) * 10_000));
        return void res.end();
      }
      if (req.url === "/error") {
        res.writeHead(404, { "Content-Type": "application/json" });
        return void res.end(JSON.stringify({ errcode: "M_UNRECOGNIZED", pad: "x".repeat(10_000) }));
      }
      res.writeHead(206, { "Content-Range": "bytes 0-1/2", "Content-Length": "2" });
      res.end("ok");
    });
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("streams a large body through at most four reused buffers, none overwritten while written", async () => {
    const res = await pooledGet(new URL(`${base}/big`));
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-length"], String(BIG.length));
    const slow = slowTarget();
    await res.pipeTo(slow.target);
    assert.ok(slow.body().equals(BIG), "the body differs");
    const stats = slow.stats();
    assert.equal(stats.overwritten, 0);
    assert.ok(stats.buffers <= 4, `slices came from ${stats.buffers} buffers`);
    assert.ok(stats.maxPending >= 1, "no write was pending");
  });

  it("reads the next download into the buffers of the one before", async () => {
    const first = slowTarget();
    await (await pooledGet(new URL(`${base}/big`))).pipeTo(first.target);
    const second = slowTarget();
    await (await pooledGet(new URL(`${base}/big`))).pipeTo(second.target);
    assert.ok(second.body().equals(BIG), "the body differs");
    assert.equal(second.stats().overwritten, 0);
    assert.deepEqual(
      [...second.buffers].filter((b) => !first.buffers.has(b)),
      [],
      "no buffer the first download did not use",
    );
  });

  it("reads a chunked body", async () => {
    const res = await pooledGet(new URL(`${base}/chunked`));
    assert.equal(res.headers["transfer-encoding"], "chunked");
    const slow = slowTarget();
    await res.pipeTo(slow.target);
    assert.ok(slow.body().equals(BIG.subarray(0, 1_000_000)), "the body differs");
    assert.equal(slow.stats().overwritten, 0);
  });

  it("sends Host, Connection: close and the given headers; refuses a header that could split the request", async () => {
    seen.length = 0;
    const res = await pooledGet(new URL(`${base}/part?x=1`), {
      headers: { Authorization: "Bearer t", Range: "bytes=0-1" },
    });
    assert.equal(res.status, 206);
    assert.equal(res.headers["content-range"], "bytes 0-1/2");
    assert.equal(await res.text(100), "ok");
    assert.equal(seen[0]!.url, "/part?x=1");
    assert.equal(seen[0]!.headers.host, new URL(base).host);
    assert.equal(seen[0]!.headers.connection, "close");
    assert.equal(seen[0]!.headers.authorization, "Bearer t");
    assert.equal(seen[0]!.headers.range, "bytes=0-1");
    await assert.rejects(
      pooledGet(new URL(`${base}/part`), { headers: { Range: "bytes=0-1\r\nX-Evil: 1" } }),
      /the request header Range holds a control character/,
    );
    await assert.rejects(pooledGet(new URL("ftp://example.org/x")), /wants an http\(s\) URL, got ftp:/);
  });

  it("reads at most the asked bytes of an error answer", async () => {
    const res = await pooledGet(new URL(`${base}/error`));
    assert.equal(res.status, 404);
    const text = await res.text(20);
    assert.equal(text, '{"errcode":"M_UNRECO');
  });

  it("rejects a body cut short, and a malformed response, saying what was wrong", async () => {
    const cut = await rawServer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    try {
      const res = await pooledGet(cut.url);
      await assert.rejects(
        res.pipeTo(slowTarget().target),
        (err: unknown) =>
          err instanceof HttpResponseError && /91 bytes of the body missing/.test(err.message),
      );
    } finally {
      cut.close();
    }
    const bad = await rawServer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    try {
      await assert.rejects(pooledGet(bad.url), /bad Content-Length "-1"/);
    } finally {
      bad.close();
    }
    const silent = await rawServer("");
    try {
      await assert.rejects(pooledGet(silent.url), /closed before the response's head was complete/);
    } finally {
      silent.close();
    }
  });

  it("rejects a refused connection, and an abort before the head", async () => {
    await assert.rejects(pooledGet(new URL("http://127.0.0.1:9/x")), { code: "ECONNREFUSED" });
    const hang = await rawServer("HTTP/1.1 200 OK\r\n", () => undefined);
    try {
      const abort = new AbortController();
      const pending = pooledGet(hang.url, { signal: abort.signal });
      setTimeout(() => abort.abort(new Error("no answer in 5 ms")), 5);
      await assert.rejects(pending, /no answer in 5 ms/);
    } finally {
      hang.close();
    }
  });

  it("closing a response closes the connection and rejects its pipe", async () => {
    const endless = await rawServer(
      "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome",
      () => undefined,
    );
    try {
      const res = await pooledGet(endless.url);
      const piped = res.pipeTo(slowTarget().target);
      res.close();
      await assert.rejects(piped, /closed before its end/);
    } finally {
      endless.close();
    }
  });

  it("works over https", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "pooled-tls-"));
    try {
      const made = spawnSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost",
        ],
        { encoding: "utf8" },
      );
      if (made.error || made.status !== 0) return t.skip("openssl could not make a test certificate");
      const cert = await readFile(join(dir, "cert.pem"));
      const tls = createHttpsServer({ key: await readFile(join(dir, "key.pem")), cert }, (_req, res) => {
        res.writeHead(200, { "Content-Length": String(BIG.length) });
        res.end(BIG);
      });
      const port = await listen(tls);
      try {
        const res = await pooledGet(new URL(`https://localhost:${port}/big`), { ca: cert });
        const slow = slowTarget();
        await res.pipeTo(slow.target);
        assert.ok(slow.body().equals(BIG), "the body differs");
        assert.equal(slow.stats().overwritten, 0);
        // TLS reads one record (16 KiB) at a time, into a pool of 16 buffers.
        assert.ok(slow.stats().buffers <= 16, `slices came from ${slow.stats().buffers} buffers`);
        await assert.rejects(
          pooledGet(new URL(`https://localhost:${port}/big`)),
          /self.signed|unable to verify/i,
        );
      } finally {
        tls.closeAllConnections();
        tls.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
