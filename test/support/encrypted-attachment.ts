/**
 * Encrypts bytes the way a Matrix client encrypts an attachment (AES-256-CTR, random key and
 * iv with a zero counter half, SHA-256 of the ciphertext; unpadded base64): the ciphertext and
 * the content `file` fields (without `url`).
 */
import { createCipheriv, createHash, randomBytes } from "node:crypto";

export function encryptAttachment(plain: Uint8Array): {
  cipher: Uint8Array;
  encryption: { v: "v2"; key: Record<string, unknown>; iv: string; hashes: { sha256: string } };
} {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const c = createCipheriv("aes-256-ctr", key, iv);
  const cipher = Buffer.concat([c.update(plain), c.final()]);
  const unpadded = (b64: string) => b64.replace(/=+$/, "");
  return {
    cipher: new Uint8Array(cipher),
    encryption: {
      v: "v2",
      key: {
        kty: "oct",
        key_ops: ["encrypt", "decrypt"],
        alg: "A256CTR",
        k: unpadded(key.toString("base64url")),
        ext: true,
      },
      iv: unpadded(iv.toString("base64")),
      hashes: { sha256: unpadded(createHash("sha256").update(cipher).digest("base64")) },
    },
  };
}
