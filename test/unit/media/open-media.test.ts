// ctx.openMedia's machinery against the in-process fake homeserver: streaming through
// authenticated media, the size cap (Content-Length up front, bytes while streaming), the
// fallback to /_matrix/media/v3 for servers without authenticated media, thumbnails,
// encrypted files, downloadMedia on top, the queue slot, and RecordingContext's double.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { MatrixError } from "../../../src/client/index.js";
import type { MatrixFile } from "../../../src/adapter/adapter.js";
import { MediaDecryptionError, MediaTooLargeError } from "../../../src/media/errors.js";
import { matrixFileOf } from "../../../src/media/matrix-file.js";
import { readAll } from "../../../src/media/size-cap.js";
import { RecordingContext } from "../../../src/testing/recording-context.js";
import { BOT, fixture } from "../client/helpers.js";
import { encryptAttachment } from "../../support/encrypted-attachment.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function upload(f: Awaited<ReturnType<typeof fixture>>, data: Uint8Array, contentType = "text/plain") {
  return f.client.uploadMedia(BOT, data, { contentType });
}

describe("openMedia on the homeserver", () => {
  it("streams a file through /_matrix/client/v1/media/download with its type and size", async () => {
    const f = await fixture();
    try {
      const data = new Uint8Array(randomBytes(100_000));
      const mxc = await upload(f, data, "application/x-test");
      const opened = await f.client.openMedia(mxc);
      assert.equal(opened.contentType, "application/x-test");
      assert.equal(opened.size, 100_000);
      assert.deepEqual(Buffer.from(await readAll(opened.stream)), Buffer.from(data));
      const [req] = f.hs.requestsTo("GET", "/_matrix/client/v1/media/download/");
      assert.equal(req!.path, `/_matrix/client/v1/media/download/${mxc.slice(6)}`);
      assert.equal(f.hs.requestsTo("GET", "/_matrix/media/v3/").length, 0);
      await assert.rejects(f.client.openMedia("https://example.org/x"), /not an mxc:\/\/ URI/);
    } finally {
      await f.close();
    }
  });

  it("refuses a file whose Content-Length is over maxBytes before reading it", async () => {
    const f = await fixture();
    try {
      const mxc = await upload(f, new Uint8Array(5000));
      await assert.rejects(f.client.openMedia(mxc, { maxBytes: 4999 }), (err: unknown) => {
        assert.ok(err instanceof MediaTooLargeError, String(err));
        assert.equal(
          err.message,
          `${mxc} is too large: more than 4999 bytes; the bridge (media.maxBytes) allows 4999`,
        );
        return true;
      });
      const opened = await f.client.openMedia(mxc, { maxBytes: 5000 });
      assert.equal((await readAll(opened.stream)).length, 5000, "exactly the limit is allowed");
    } finally {
      await f.close();
    }
  });

  it("errors the stream once more than maxBytes arrived when no Content-Length said so", async () => {
    const f = await fixture();
    try {
      f.hs.mediaWithoutLength = true;
      const mxc = await upload(f, new Uint8Array(200_000));
      const opened = await f.client.openMedia(mxc, { maxBytes: 50_000 });
      assert.equal(opened.size, undefined);
      let read = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of opened.stream) read += chunk.byteLength;
        })(),
        (err: unknown) => err instanceof MediaTooLargeError && /more than 50000 bytes/.test(err.message),
      );
      assert.ok(read <= 50_000, `no more than the limit reached the reader (got ${read})`);
      const whole = await readAll((await f.client.openMedia(mxc, { maxBytes: 200_000 })).stream);
      assert.equal(whole.length, 200_000);
    } finally {
      await f.close();
    }
  });

  it("falls back to /_matrix/media/v3 when the server answers 404 M_UNRECOGNIZED for v1", async () => {
    const f = await fixture();
    try {
      const mxc = await upload(f, new TextEncoder().encode("old server"));
      f.hs.mediaV1Missing = true;
      assert.equal(text(await readAll((await f.client.openMedia(mxc)).stream)), "old server");
      assert.equal(f.hs.requestsTo("GET", "/_matrix/client/v1/media/download/").length, 1);
      const [v3] = f.hs.requestsTo("GET", "/_matrix/media/v3/download/");
      assert.ok(v3, "asked v3 after v1's 404");
      assert.equal(v3.headers.authorization?.startsWith("Bearer "), true);
      // A 404 M_NOT_FOUND is the answer, not a reason to try elsewhere.
      f.hs.mediaV1Missing = false;
      const before = f.hs.requests.length;
      await assert.rejects(f.client.openMedia("mxc://example.org/missing"), (err: unknown) => {
        assert.ok(err instanceof MatrixError);
        assert.equal(err.errcode, "M_NOT_FOUND");
        return true;
      });
      assert.equal(f.hs.requests.length, before + 1, "one request, no fallback");
    } finally {
      await f.close();
    }
  });

  it("asks for a thumbnail of the size given, with the same fallback", async () => {
    const f = await fixture();
    try {
      const mxc = await upload(f, new TextEncoder().encode("pixels"), "image/png");
      const opened = await f.client.openMedia(mxc, { thumbnail: { width: 96, height: 64 } });
      await readAll(opened.stream);
      const [req] = f.hs.requestsTo("GET", "/_matrix/client/v1/media/thumbnail/");
      assert.equal(req!.query.get("width"), "96");
      assert.equal(req!.query.get("height"), "64");
      assert.equal(req!.query.get("method"), "scale");
      f.hs.mediaV1Missing = true;
      await readAll((await f.client.openMedia(mxc, { thumbnail: { width: 32, height: 32 } })).stream);
      assert.equal(f.hs.requestsTo("GET", "/_matrix/media/v3/thumbnail/").length, 1);
    } finally {
      await f.close();
    }
  });

  it("decrypts an encrypted file, and errors the stream when its ciphertext was tampered with", async () => {
    const f = await fixture();
    try {
      const plain = new Uint8Array(randomBytes(40_000));
      const { cipher, encryption } = encryptAttachment(plain);
      const url = await upload(f, cipher, "application/octet-stream");
      const file: MatrixFile = {
        url,
        name: "s.bin",
        mimetype: "image/jpeg",
        encrypted: true,
        encryption: encryption as never,
      };
      const opened = await f.client.openMedia(file);
      assert.equal(opened.contentType, "image/jpeg", "the sender's mimetype, not the ciphertext's");
      assert.deepEqual(Buffer.from(await readAll(opened.stream)), Buffer.from(plain));
      await assert.rejects(f.client.openMedia(file, { thumbnail: { width: 1, height: 1 } }), /is encrypted/);

      const tampered = cipher.slice();
      tampered[100]! ^= 0xff;
      const badUrl = await upload(f, tampered);
      const bad = await f.client.openMedia({ ...file, url: badUrl });
      await assert.rejects(readAll(bad.stream), MediaDecryptionError);
      const before = f.hs.requests.length;
      await assert.rejects(
        f.client.openMedia({ ...file, encryption: { ...encryption, v: "v1" } as never }),
        /version "v1" is not "v2"/,
      );
      assert.equal(f.hs.requests.length, before, "bad keys fail before any request");
    } finally {
      await f.close();
    }
  });

  it("opens a sender's encrypted thumbnail (info.thumbnail_file) decrypted, with a spec vector", async () => {
    const f = await fixture();
    try {
      // browser-encrypt-attachment's v2 vector: "Hello, World" (see decrypt.test.ts).
      const cipher = new Uint8Array(Buffer.from("5xJZTt5cQicm+9f4", "base64"));
      const thumbUrl = await upload(f, cipher, "application/octet-stream");
      const image = encryptAttachment(new Uint8Array(randomBytes(3000)));
      const imageUrl = await upload(f, image.cipher, "application/octet-stream");
      const thumbnailFile = {
        url: thumbUrl,
        v: "v2",
        key: {
          kty: "oct",
          key_ops: ["encrypt", "decrypt"],
          alg: "A256CTR",
          k: `${"_".repeat(42)}8`,
          ext: true,
        },
        iv: "//////////8AAAAAAAAAAA",
        hashes: { sha256: "YzF08lARDdOCzJpzuSwsjTNlQc4pHxpdHcXiD/wpK6k" },
      };
      const file = matrixFileOf("m.image", {
        msgtype: "m.image",
        body: "secret.png",
        file: { url: imageUrl, ...image.encryption },
        info: {
          mimetype: "image/png",
          thumbnail_file: thumbnailFile,
          thumbnail_info: { mimetype: "text/plain", size: 12 },
        },
      })!;
      assert.equal(file.thumbnail?.encrypted, true);
      const opened = await f.client.openMedia(file.thumbnail);
      assert.equal(opened.contentType, "text/plain", "thumbnail_info's mimetype");
      assert.equal(new TextDecoder().decode(await readAll(opened.stream)), "Hello, World");
      // The file itself still opens with its own keys.
      assert.equal((await readAll((await f.client.openMedia(file)).stream)).length, 3000);
      // The thumbnail's ciphertext under the file's keys fails its hash check.
      const mixed = await f.client.openMedia({ ...file.thumbnail, encryption: file.encryption! });
      await assert.rejects(readAll(mixed.stream), MediaDecryptionError);
    } finally {
      await f.close();
    }
  });

  it("keeps downloadMedia working on top of openMedia, capped", async () => {
    const f = await fixture();
    try {
      const mxc = await upload(f, new TextEncoder().encode("whole"), "text/plain");
      const got = await f.client.downloadMedia(mxc);
      assert.equal(text(got.data), "whole");
      assert.equal(got.contentType, "text/plain");
      await assert.rejects(f.client.downloadMedia(mxc, { maxBytes: 4 }), /more than 4 bytes/);
    } finally {
      await f.close();
    }
  });

  it("holds no request slot while a body is unread: other requests go on, with concurrency 1", async () => {
    const f = await fixture({ concurrency: 1 });
    try {
      const mxc = await upload(f, new Uint8Array(300_000));
      const opened = await f.client.openMedia(mxc);
      const who = await Promise.race([
        f.client.whoami(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("whoami waited for the unread body")), 2000),
        ),
      ]);
      assert.deepEqual(who, { user_id: BOT });
      assert.equal((await readAll(opened.stream)).length, 300_000, "the body is still there afterwards");
      const second = await f.client.openMedia(mxc);
      await second.stream.cancel();
      assert.deepEqual(await f.client.whoami(), { user_id: BOT });
    } finally {
      await f.close();
    }
  });

  it("stops the body when the caller's signal aborts", async () => {
    const f = await fixture();
    try {
      f.hs.mediaWithoutLength = true;
      const mxc = await upload(f, new Uint8Array(2_000_000));
      const abort = new AbortController();
      const opened = await f.client.openMedia(mxc, { signal: abort.signal });
      abort.abort(new Error("the remote side went away"));
      await assert.rejects(readAll(opened.stream));
    } finally {
      await f.close();
    }
  });
});

describe("RecordingContext.openMedia (the test double)", () => {
  it("serves media registered with addMedia, capped and decrypted like the bridge, and records the call", async () => {
    const ctx = new RecordingContext();
    const mxc = ctx.addMedia("mxc://example.org/a", new TextEncoder().encode("hello"), "text/plain");
    const opened = await ctx.openMedia(mxc);
    assert.equal(opened.contentType, "text/plain");
    assert.equal(text(await readAll(opened.stream)), "hello");
    assert.deepEqual(ctx.calls.at(-1), { method: "openMedia", args: [mxc, {}] });
    await assert.rejects(ctx.openMedia(mxc, { maxBytes: 4 }), MediaTooLargeError);
    ctx.mediaMaxBytes = 3;
    await assert.rejects(ctx.downloadMedia(mxc), /more than 3 bytes/);
    ctx.mediaMaxBytes = 100;
    assert.equal(text((await ctx.downloadMedia(mxc)).data), "hello");

    const plain = new TextEncoder().encode("secret");
    const { cipher, encryption } = encryptAttachment(plain);
    ctx.addMedia("mxc://example.org/enc", cipher);
    const file: MatrixFile = {
      url: "mxc://example.org/enc",
      name: "s",
      encrypted: true,
      encryption: encryption as never,
    };
    assert.equal(text(await readAll((await ctx.openMedia(file)).stream)), "secret");
    await assert.rejects(
      ctx.openMedia("mxc://example.org/none"),
      /no media at mxc:\/\/example\.org\/none \(register it/,
    );
    assert.throws(() => ctx.addMedia("http://x/y", plain), /not an mxc:\/\/ URI/);
  });
});
