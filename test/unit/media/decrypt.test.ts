// Encrypted attachments: the v2 vectors of matrix-org/browser-encrypt-attachment
// (test/decrypt.Spec.js, the decryption matrix-js-sdk and Element use), round trips through
// node:crypto's AES-256-CTR in uneven chunks, and tampering (a changed byte, a cut-off end,
// a wrong hash) erroring the stream at its end.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { attachmentKeys, decryptAttachment } from "../../../src/media/decrypt.js";
import { MediaDecryptionError } from "../../../src/media/errors.js";
import { readAll } from "../../../src/media/size-cap.js";
import { encryptAttachment } from "../../support/encrypted-attachment.js";

const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

function info(k: string, iv: string, sha256: string) {
  return {
    v: "v2",
    key: { kty: "oct", key_ops: ["encrypt", "decrypt"], k, alg: "A256CTR", ext: true },
    iv,
    hashes: { sha256 },
  };
}

// [ciphertext (base64), info, plaintext (base64)]
const VECTORS: Array<[string, ReturnType<typeof info>, string]> = [
  ["", info("A".repeat(43), "AAAAAAAAAAAAAAAAAAAAAA", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"), ""],
  [
    "5xJZTt5cQicm+9f4",
    info(`${"_".repeat(42)}8`, "//////////8AAAAAAAAAAA", "YzF08lARDdOCzJpzuSwsjTNlQc4pHxpdHcXiD/wpK6k"),
    "SGVsbG8sIFdvcmxk",
  ],
  [
    "zhtFStAeFx0s+9L/sSQO+WQMtldqYEHqTxMduJrCIpnkyer09kxJJuA4K+adQE4w+7jZe/vR9kIcqj9rOhDR8Q",
    info(`${"_".repeat(42)}8`, "//////////8AAAAAAAAAAA", "IOq7/dHHB+mfHfxlRY5XMeCWEwTPmlf4cJcgrkf6fVU"),
    "YWxwaGFudW1lcmljYWxseWFscGhhbnVtZXJpY2FsbHlhbHBoYW51bWVyaWNhbGx5YWxwaGFudW1lcmljYWxseQ",
  ],
];

/** A stream of `data` in pieces of the given sizes (the rest in one last piece). */
function streamOf(data: Uint8Array, sizes: number[] = []): ReadableStream<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= data.length) break;
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  if (at < data.length) pieces.push(data.subarray(at));
  return new ReadableStream({
    start(c) {
      for (const p of pieces) c.enqueue(p);
      c.close();
    },
  });
}

const decrypt = (cipher: Uint8Array, file: unknown, sizes?: number[]) =>
  readAll(streamOf(cipher, sizes).pipeThrough(decryptAttachment(file)));

describe("encrypted attachments: decryption", () => {
  for (const [i, [cipher, file, plain]] of VECTORS.entries()) {
    it(`decrypts known vector ${i + 1} (${b64(plain).length} bytes)`, async () => {
      assert.deepEqual(Buffer.from(await decrypt(b64(cipher), file)), Buffer.from(b64(plain)));
      // The same, one byte at a time.
      const ones = Array.from({ length: b64(cipher).length }, () => 1);
      assert.deepEqual(Buffer.from(await decrypt(b64(cipher), file, ones)), Buffer.from(b64(plain)));
    });
  }

  it("round-trips random files in uneven chunks (counter carried across chunk boundaries)", async () => {
    for (const size of [1, 15, 16, 17, 1000, 70_000]) {
      const plain = new Uint8Array(randomBytes(size));
      const { cipher, encryption: file } = encryptAttachment(plain);
      const got = await decrypt(cipher, file, [3, 13, 16, 1, 4096, 7]);
      assert.deepEqual(Buffer.from(got), Buffer.from(plain), `size ${size}`);
    }
  });

  it("errors the stream when a ciphertext byte was changed, the end cut off, or the hash is another's", async () => {
    const plain = new TextEncoder().encode("the quarterly numbers, do not leak");
    const { cipher, encryption: file } = encryptAttachment(plain);
    const flipped = cipher.slice();
    flipped[5]! ^= 1;
    await assert.rejects(decrypt(flipped, file), (err: unknown) => {
      assert.ok(err instanceof MediaDecryptionError);
      assert.match(err.message, /SHA-256 is not hashes\.sha256/);
      return true;
    });
    await assert.rejects(decrypt(cipher.subarray(0, cipher.length - 1), file), MediaDecryptionError);
    const other = { ...file, hashes: { sha256: VECTORS[1]![1].hashes.sha256 } };
    await assert.rejects(decrypt(cipher, other), /SHA-256 is not hashes\.sha256/);
    // The unchanged file still decrypts.
    assert.deepEqual(Buffer.from(await decrypt(cipher, file)), Buffer.from(plain));
  });

  it("refuses unusable keys before reading anything, naming what is wrong", () => {
    const good = VECTORS[1]![1];
    const cases: Array<[unknown, RegExp]> = [
      [{ ...good, v: "v1" }, /version "v1" is not "v2"/],
      [{ ...good, v: undefined }, /version undefined is not "v2"/],
      [{ ...good, key: { ...good.key, alg: "A256GCM" } }, /key\.alg is not "A256CTR"/],
      [{ ...good, key: { ...good.key, k: "AAAA" } }, /key\.k is not 32 bytes/],
      [{ ...good, key: { ...good.key, k: "not base64!" } }, /key\.k is not 32 bytes/],
      [{ ...good, iv: "AAAA" }, /iv is not 16 bytes/],
      [{ ...good, hashes: {} }, /hashes\.sha256 is not a SHA-256/],
      [null, /version undefined/],
    ];
    for (const [file, message] of cases) {
      assert.throws(
        () => decryptAttachment(file),
        (err: unknown) => {
          assert.ok(err instanceof MediaDecryptionError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
    assert.equal(attachmentKeys(good).key.length, 32);
  });
});
