import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { MediaFetchError, MediaTooLargeError } from "../../../src/media/index.js";
import { Attachments } from "../../../src/media/attachments.js";
import { spool } from "../../../src/media/spool.js";
import { startFileServer, type FileServer } from "../../support/file-server.js";
import * as f from "../../support/media-fixtures.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const big = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);

describe("spool", () => {
  let dir: string;
  let files: FileServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-spool-"));
    files = await startFileServer();
  });
  after(() => files.close());
  const opts = (maxBytes = 1_000_000) => ({ dir, maxBytes });
  const leftover = async () => (await readdir(dir)).length;

  it("writes bytes to a file, with its sha256, size and head", async () => {
    const data = big(70_000);
    const file = await spool(data, "x", opts());
    assert.deepEqual(new Uint8Array(await readFile(file.path)), data);
    assert.equal(file.sha256, sha(data));
    assert.equal(file.size, 70_000);
    assert.equal(file.head.length, 64 * 1024);
    assert.deepEqual(file.head, data.subarray(0, 64 * 1024));
  });

  it("reads a web ReadableStream, a Node Readable and an async generator", async () => {
    const data = big(5000);
    const web = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.subarray(0, 100));
        c.enqueue(data.subarray(100));
        c.close();
      },
    });
    async function* gen() {
      await Promise.resolve();
      yield data.subarray(0, 1);
      yield data.subarray(1);
    }
    for (const source of [web, Readable.from([Buffer.from(data)]), gen()]) {
      const file = await spool(source, "s", opts());
      assert.equal(file.sha256, sha(data));
      assert.equal(file.size, 5000);
    }
  });

  it("refuses a source over the cap, leaving no file behind", async () => {
    const before = await leftover();
    await assert.rejects(spool(big(1001), "big.bin", opts(1000)), (err: unknown) => {
      assert.ok(err instanceof MediaTooLargeError);
      assert.match(
        err.message,
        /big\.bin is too large: more than 1000 bytes; the bridge \(media\.maxBytes\) allows 1000/,
      );
      return true;
    });
    async function* endless() {
      for (;;) {
        await Promise.resolve();
        yield new Uint8Array(100);
      }
    }
    await assert.rejects(spool(endless(), "endless", opts(1000)), MediaTooLargeError);
    assert.equal(await leftover(), before);
  });

  it("refuses a chunk that is not bytes, naming it", async () => {
    async function* strings() {
      await Promise.resolve();
      yield "text" as unknown as Uint8Array;
    }
    await assert.rejects(spool(strings(), "s.txt", opts()), /gave a string, not bytes/);
  });

  it("fetches an http URL, following redirects, keeping the served Content-Type", async () => {
    const data = f.png(3, 4);
    files.serve("/a.png", data, { contentType: "image/png" });
    const file = await spool(files.url("/hop/5/a.png"), "a", opts());
    assert.equal(file.sha256, sha(data));
    assert.equal(file.servedType, "image/png");
  });

  it("stops a redirect loop after 5 redirects, and a redirect to another scheme", async () => {
    const hitsBefore = files.hits.get("/loop") ?? 0;
    await assert.rejects(spool(files.url("/loop"), "l", opts()), (err: unknown) => {
      assert.ok(err instanceof MediaFetchError);
      assert.match(err.message, /more than 5 redirects/);
      return true;
    });
    assert.equal((files.hits.get("/loop") ?? 0) - hitsBefore, 6);
    await assert.rejects(spool(files.url("/hop/6/a.png"), "h", opts()), /more than 5 redirects/);
    await assert.rejects(
      spool(files.url("/ftp"), "f", opts()),
      /ftp:\/\/ URLs cannot be fetched; only http\(s\)/,
    );
    await assert.rejects(spool(new URL("file:///etc/passwd"), "p", opts()), MediaFetchError);
  });

  it("refuses an oversized URL by its Content-Length before reading, and a chunked one while reading", async () => {
    files.serve("/big", big(5000));
    files.serve("/big-chunked", big(5000), { chunked: true });
    await assert.rejects(spool(files.url("/big"), "b", opts(1000)), (err: unknown) => {
      assert.ok(err instanceof MediaTooLargeError);
      assert.equal(err.size, 5000);
      return true;
    });
    await assert.rejects(spool(files.url("/big-chunked"), "b", opts(1000)), MediaTooLargeError);
  });

  it("names the HTTP status of a failed fetch, and gives up on a server that never answers", async () => {
    await assert.rejects(spool(files.url("/nothing"), "n", opts()), /HTTP 404/);
    const { createServer } = await import("node:http");
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      await assert.rejects(
        spool(new URL(`http://127.0.0.1:${port}/`), "s", { ...opts(), headersTimeoutMs: 100 }),
        /no answer in time/,
      );
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe("Attachments.prepare", () => {
  it("refuses a file over the homeserver's m.upload.size, naming both sizes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bk-att-"));
    const a = new Attachments({ dir, maxBytes: 10_000, uploadLimit: { get: () => Promise.resolve(100) } });
    await assert.rejects(a.prepare({ source: big(101), fileName: "f.bin" }), (err: unknown) => {
      assert.ok(err instanceof MediaTooLargeError);
      assert.equal(err.limitOf, "homeserver (m.upload.size)");
      assert.match(err.message, /f\.bin is too large: .* the homeserver \(m\.upload\.size\) allows 100/);
      return true;
    });
    assert.deepEqual(await readdir(dir), []);
    const ok = await a.prepare({ source: f.gif(9, 8), fileName: "g.gif" });
    assert.deepEqual([ok.mimetype, ok.width, ok.height], ["image/gif", 9, 8]);
  });

  it("spools a thumbnail beside the file, and leaves no file behind when it is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bk-att-"));
    const a = new Attachments({ dir, maxBytes: 10_000, uploadLimit: { get: () => Promise.resolve(2000) } });
    const m = await a.prepare({
      source: f.png(40, 30),
      fileName: "cat.png",
      thumbnail: { source: f.jpeg(8, 6) },
    });
    assert.deepEqual(
      { ...m.thumbnail, path: undefined, sha256: undefined },
      {
        path: undefined,
        sha256: undefined,
        size: f.jpeg(8, 6).length,
        mimetype: "image/jpeg",
        width: 8,
        height: 6,
      },
    );
    assert.deepEqual(new Uint8Array(await readFile(m.thumbnail!.path)), f.jpeg(8, 6));
    assert.equal(m.thumbnail!.sha256, sha(f.jpeg(8, 6)));
    assert.equal((await readdir(dir)).length, 2);
    await a.discard(m);
    assert.deepEqual(await readdir(dir), []);

    await assert.rejects(
      a.prepare({
        source: f.png(4, 4),
        fileName: "x.png",
        thumbnail: { source: new TextEncoder().encode("hello") },
      }),
      /the thumbnail of x\.png must be an image \(image\/\*\), got application\/octet-stream/,
    );
    await assert.rejects(
      a.prepare({ source: f.png(4, 4), fileName: "x.png", thumbnail: { source: big(2001) } }),
      (err: unknown) => {
        assert.ok(err instanceof MediaTooLargeError);
        assert.equal(err.what, "the thumbnail of x.png");
        assert.equal(err.limitOf, "homeserver (m.upload.size)");
        return true;
      },
    );
    assert.deepEqual(await readdir(dir), [], "neither the file nor the thumbnail stays in the spool");
  });

  it("refuses bad attachments at the call", async () => {
    const a = new Attachments({
      dir: tmpdir(),
      maxBytes: 10,
      uploadLimit: { get: () => Promise.resolve(undefined) },
    });
    await assert.rejects(
      a.prepare({ source: new Uint8Array(1), fileName: "" }),
      /fileName must be a non-empty string/,
    );
    await assert.rejects(
      a.prepare({ source: new Uint8Array(1), fileName: "x", width: -1 }),
      /width must be a non-negative integer/,
    );
    await assert.rejects(
      a.prepare({ source: new Uint8Array(1), fileName: "x", mimetype: "png" }),
      /mimetype must look like type\/subtype/,
    );
    await assert.rejects(
      a.prepare({ source: new Uint8Array(1), fileName: "x", thumbnail: "t.png" as never }),
      /attachment\.thumbnail must be an object, got t\.png/,
    );
    await assert.rejects(
      a.prepare({
        source: new Uint8Array(1),
        fileName: "x",
        thumbnail: { source: new Uint8Array(1), height: 1.5 },
      }),
      /attachment\.thumbnail\.height must be a non-negative integer, got 1\.5/,
    );
    await assert.rejects(
      a.prepare({ source: "bytes" as unknown as Uint8Array, fileName: "x" }),
      /attachment source must be/,
    );
  });
});
