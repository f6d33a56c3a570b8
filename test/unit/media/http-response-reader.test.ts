// The HTTP/1.1 response reader of the media link route's download client
// (src/media/http-response-reader.ts): Content-Length, chunked and close-delimited bodies fed
// in pieces split at every position, heads split across reads, 1xx, bodiless answers,
// Range's 206, bad responses and connections that end early, each with a clear error.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HttpResponseError,
  HttpResponseReader,
  type ResponseHead,
} from "../../../src/media/http-response-reader.js";

interface Read {
  heads: ResponseHead[];
  body: Buffer;
  ended: number;
}

function reader(opts: { headRequest?: boolean; maxHeadBytes?: number } = {}) {
  const read: Read = { heads: [], body: Buffer.alloc(0), ended: 0 };
  const r = new HttpResponseReader({
    onHead: (h) => read.heads.push(h),
    // Copied at once: the reader's slices are views into what push was given.
    onBody: (slice) => (read.body = Buffer.concat([read.body, slice])),
    onEnd: () => read.ended++,
    ...opts,
  });
  return { r, read };
}

/** Feeds `bytes` in pieces cut at `cuts`, each piece in a buffer of its own that is then scribbled over. */
function feed(r: HttpResponseReader, bytes: Buffer, cuts: number[]): void {
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    const piece = Buffer.from(bytes.subarray(from, to));
    r.push(piece);
    piece.fill(0x2a); // a reused read buffer: the reader must not keep a view of it
    from = to;
  }
}

/** Every way of cutting `bytes` in two, and byte by byte. */
function splits(bytes: Buffer): number[][] {
  const out: number[][] = [[]];
  for (let i = 1; i < bytes.length; i++) out.push([i]);
  out.push(Array.from({ length: bytes.length - 1 }, (_, i) => i + 1));
  return out;
}

const raw = (s: string) => Buffer.from(s, "latin1");

describe("HttpResponseReader", () => {
  it("reads a Content-Length body, split anywhere, and reports its head once", () => {
    const bytes = raw(
      "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 11\r\nX-Twice: a\r\nx-twice: b\r\n\r\nhello world",
    );
    for (const cuts of splits(bytes)) {
      const { r, read } = reader();
      feed(r, bytes, cuts);
      assert.deepEqual(read.heads, [
        { status: 200, headers: { "content-type": "image/png", "content-length": "11", "x-twice": "a, b" } },
      ]);
      assert.equal(read.body.toString(), "hello world", `cut at ${cuts.join(",")}`);
      assert.equal(read.ended, 1);
      assert.ok(r.done);
    }
  });

  it("hands body slices that are views into the pushed bytes, not copies", () => {
    const views: Buffer[] = [];
    const r = new HttpResponseReader({
      onHead: () => undefined,
      onBody: (s) => views.push(s),
      onEnd: () => undefined,
    });
    const bytes = raw("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd");
    r.push(bytes);
    assert.equal(views.length, 1);
    assert.equal(views[0]!.buffer, bytes.buffer);
    assert.equal(views[0]!.toString(), "abcd");
  });

  it("reads a chunked body with extensions and trailers, split anywhere", () => {
    const bytes = raw(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
        "5;name=value\r\nhello\r\n1\r\n \r\nA  \r\n0123456789\r\n0\r\nX-Checksum: abc\r\n\r\n",
    );
    for (const cuts of splits(bytes)) {
      const { r, read } = reader();
      feed(r, bytes, cuts);
      assert.equal(read.body.toString(), "hello 0123456789", `cut at ${cuts.join(",")}`);
      assert.equal(read.ended, 1);
    }
  });

  it("prefers Transfer-Encoding over Content-Length, and reads to the end without either", () => {
    const { r, read } = reader();
    r.push(
      raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    );
    assert.equal(read.body.toString(), "ok");
    assert.ok(r.done);

    const close = reader();
    close.r.push(raw("HTTP/1.0 200 OK\r\n\r\nuntil"));
    close.r.push(raw(" the end"));
    assert.equal(close.read.ended, 0);
    close.r.end();
    assert.equal(close.read.body.toString(), "until the end");
    assert.equal(close.read.ended, 1);
  });

  it("passes a 206 with its Content-Range and reads its part", () => {
    const { r, read } = reader();
    r.push(raw("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-4/9\r\nContent-Length: 3\r\n\r\ncde"));
    assert.equal(read.heads[0]!.status, 206);
    assert.equal(read.heads[0]!.headers["content-range"], "bytes 2-4/9");
    assert.equal(read.body.toString(), "cde");
    assert.ok(r.done);
  });

  it("skips interim 1xx heads and ends bodiless answers at their head", () => {
    const { r, read } = reader();
    r.push(
      raw(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      ),
    );
    assert.deepEqual(
      read.heads.map((h) => h.status),
      [200],
    );
    assert.equal(read.body.toString(), "hi");
    for (const [head, opts] of [
      ["HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", {}],
      ["HTTP/1.1 304 Not Modified\r\n\r\n", {}],
      ["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {}],
      ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", { headRequest: true }],
    ] as const) {
      const x = reader(opts);
      x.r.push(raw(head));
      assert.equal(x.read.ended, 1, head);
      assert.equal(x.read.body.length, 0);
      assert.doesNotThrow(() => x.r.end());
    }
  });

  const refuses = (bytes: string, message: RegExp, opts: { maxHeadBytes?: number } = {}) => {
    const { r } = reader(opts);
    assert.throws(
      () => r.push(raw(bytes)),
      (err: unknown) => err instanceof HttpResponseError && message.test(err.message),
      bytes,
    );
  };

  it("refuses malformed responses, saying what was wrong", () => {
    refuses("HTTP/2 200 OK\r\n\r\n", /^bad status line "HTTP\/2 200 OK"$/);
    refuses("ICY 200 OK\r\n\r\n", /bad status line/);
    refuses("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", /^bad header line "no colon here"$/);
    refuses("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", /bad header line " folded"/);
    refuses("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", /^bad Content-Length "12a"$/);
    refuses("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", /bad Content-Length "1, 2"/);
    refuses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /^bad chunk size line "zz"$/);
    refuses(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n",
      /no CRLF after a chunk's data/,
    );
    refuses(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${"1".repeat(5000)}`,
      /chunk size line longer than 4096/,
    );
    refuses("HTTP/1.1 101 Switching Protocols\r\n\r\n", /switched protocols \(101\)/);
    refuses("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", /^1 bytes after the end of the response$/);
    refuses(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(200)}\r\n\r\n`, /head is larger than 100 bytes/, {
      maxHeadBytes: 100,
    });
    refuses(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(200)}`, /head is larger than 100 bytes/, {
      maxHeadBytes: 100,
    });
    refuses(
      "HTTP/1.1 200 OK\r\nX: \u0007\r\n\r\n".replace("X", "X\u0001"),
      /bad header line "X\\u0001: \\u0007"/,
    );
  });

  it("bounds a head that arrives in small pieces", () => {
    const { r } = reader({ maxHeadBytes: 64 });
    r.push(raw("HTTP/1.1 200 OK\r\n"));
    assert.throws(() => {
      for (let i = 0; i < 20; i++) r.push(raw("X-Pad: 0123\r\n"));
    }, /head is larger than 64 bytes/);
  });

  it("says how a connection that closed early left the response", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /closed before the response's head was complete/],
      ["HTTP/1.1 200 OK\r\nContent-Le", /closed before the response's head was complete/],
      ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", /closed with 7 bytes of the body missing/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", /in the middle of a chunked body/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", /in the middle of a chunked body/],
    ];
    for (const [bytes, message] of cases) {
      const { r, read } = reader();
      if (bytes !== "") r.push(raw(bytes));
      assert.throws(
        () => r.end(),
        (err: unknown) => err instanceof HttpResponseError && message.test(err.message),
      );
      assert.equal(read.ended, 0);
    }
  });
});
