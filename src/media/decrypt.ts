/**
 * Decryption of encrypted attachments (the content `file` object of an event in an
 * encrypted room; client-server spec, "Sending encrypted attachments"): AES-256-CTR with the
 * JWK key `k` and the 16-byte `iv`, after checking the SHA-256 of the ciphertext against
 * `hashes.sha256`. Streaming: the plaintext flows as the ciphertext arrives; the hash is
 * checked when the ciphertext ends, and a mismatch errors the stream, so a reader must not act
 * on the bytes before the stream ended cleanly.
 */
import { createDecipheriv, createHash, type Decipher, type Hash } from "node:crypto";
import { MediaDecryptionError } from "./errors.js";

/** The parts of an EncryptedFile that decryption needs, checked. */
export interface AttachmentKeys {
  key: Buffer;
  iv: Buffer;
  sha256: Buffer;
}

function field(obj: unknown, name: string): unknown {
  return typeof obj === "object" && obj !== null && !Array.isArray(obj)
    ? (obj as Record<string, unknown>)[name]
    : undefined;
}

/** Standard or URL-safe base64, padded or not; undefined for anything else. */
function base64(value: unknown): Buffer | undefined {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return undefined;
  return Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/** Checks an EncryptedFile's key, iv and hash (v2, A256CTR); throws MediaDecryptionError naming what is wrong. */
export function attachmentKeys(file: unknown): AttachmentKeys {
  const fail = (what: string) => new MediaDecryptionError(`encrypted attachment: ${what}`);
  if (field(file, "v") !== "v2") throw fail(`version ${JSON.stringify(field(file, "v"))} is not "v2"`);
  const jwk = field(file, "key");
  if (field(jwk, "alg") !== "A256CTR") throw fail(`key.alg is not "A256CTR"`);
  if (field(jwk, "kty") !== undefined && field(jwk, "kty") !== "oct") throw fail(`key.kty is not "oct"`);
  const key = base64(field(jwk, "k"));
  if (key?.length !== 32) throw fail("key.k is not 32 bytes of unpadded base64url");
  const iv = base64(field(file, "iv"));
  if (iv?.length !== 16) throw fail("iv is not 16 bytes of unpadded base64");
  const sha256 = base64(field(field(file, "hashes"), "sha256"));
  if (sha256?.length !== 32) throw fail("hashes.sha256 is not a SHA-256 in unpadded base64");
  return { key, iv, sha256 };
}

/**
 * A transform from ciphertext to plaintext; errors (MediaDecryptionError) at the end when
 * the ciphertext's SHA-256 is not `hashes.sha256`.
 */
export function decryptAttachment(file: unknown): TransformStream<Uint8Array, Uint8Array> {
  const keys = attachmentKeys(file);
  let decipher: Decipher;
  let hash: Hash;
  return new TransformStream({
    start() {
      decipher = createDecipheriv("aes-256-ctr", keys.key, keys.iv);
      hash = createHash("sha256");
    },
    transform(chunk, controller) {
      hash.update(chunk);
      const plain = decipher.update(chunk);
      if (plain.byteLength > 0)
        controller.enqueue(new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength));
    },
    flush(controller) {
      const rest = decipher.final(); // CTR: nothing left, but it ends the cipher cleanly
      if (!hash.digest().equals(keys.sha256)) {
        controller.error(
          new MediaDecryptionError(
            "encrypted attachment: the ciphertext's SHA-256 is not hashes.sha256 (tampered or truncated)",
          ),
        );
        return;
      }
      if (rest.byteLength > 0) controller.enqueue(new Uint8Array(rest));
    },
  });
}
