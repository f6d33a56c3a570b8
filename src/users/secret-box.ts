import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from "node:crypto";
import { envVarName } from "../config/env.js";
import type { JsonValue } from "../store/json.js";

/** Where the key comes from, for errors: the config key and its environment variable. */
export const LOGINS_KEY_SOURCE = `logins.encryptionKey (env ${envVarName("logins.encryptionKey")})`;

/**
 * A JSON value sealed by a SecretBox, itself JSON (all binary fields base64): `kid` names
 * the key it was sealed with (the first 8 hex digits of the SHA-256 of the derived key), so
 * a wrong key is told apart from damaged data without revealing the key.
 */
export interface SealedValue {
  $sealed: 1;
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

/** Fixed, purpose-named: the same key string derives the same AES key in every bridge. */
const SALT = "matrix-bridgekit logins v1";
/** scrypt cost: about 90 ms of one core (measured), once per process; 2^16 would double it. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const MIN_KEY_CHARS = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Whether a value has the shape of a SealedValue (it may still fail to open). Pure. */
export function isSealed(value: unknown): value is SealedValue {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return (
    v.$sealed === 1 &&
    typeof v.kid === "string" &&
    typeof v.iv === "string" &&
    typeof v.ct === "string" &&
    typeof v.tag === "string"
  );
}

/**
 * Seals JSON values with AES-256-GCM under a key derived from `logins.encryptionKey`: what
 * is stored cannot be read, nor changed unnoticed, without that key. Every seal takes a
 * fresh random IV, so sealing one value twice gives two different results. An optional
 * `context` (additional authenticated data) binds a sealed value to the record it belongs
 * to: opened under another context it fails like damaged data. Errors name the key's
 * config key, environment variable and key ids, never the key; nor does inspecting or
 * serialising the box show it. Pure apart from randomness.
 */
export class SecretBox {
  /** A #private field: neither util.inspect nor JSON.stringify shows it. */
  readonly #key: Buffer;

  private constructor(
    key: Buffer,
    /** The id of this box's key, as sealed values carry it in `kid`. */
    readonly kid: string,
  ) {
    this.#key = key;
  }

  /**
   * Derives the AES key from a key string (a passphrase or base64 randomness, 16+
   * characters) with scrypt. Synchronous and deliberately slow (about 0.1 s): call it once
   * at start. Throws naming the config key, never echoing the key, when it is too short.
   */
  static fromKey(key: string): SecretBox {
    if (key.trim().length < MIN_KEY_CHARS)
      throw new Error(`${LOGINS_KEY_SOURCE} must be at least ${MIN_KEY_CHARS} characters`);
    const derived = scryptSync(key, SALT, 32, SCRYPT);
    const kid = createHash("sha256").update(derived).digest("hex").slice(0, 8);
    return new SecretBox(derived, kid);
  }

  /** Seals a JSON value (undefined is refused: it is not JSON). */
  seal(value: JsonValue, context = ""): SealedValue {
    const plain = JSON.stringify(value) as string | undefined;
    if (plain === undefined) throw new TypeError("SecretBox.seal: the value is not JSON");
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return {
      $sealed: 1,
      kid: this.kid,
      iv: iv.toString("base64"),
      ct: ct.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
    };
  }

  /**
   * Opens a sealed value, sealed under the same `context`. Throws when it was sealed with
   * another key (its `kid` differs) or does not authenticate (altered, moved to another
   * record, or sealed with another key whose id happens to collide), saying which.
   */
  open(sealed: SealedValue, context = ""): JsonValue {
    if (!isSealed(sealed)) throw new TypeError("SecretBox.open: the value is not a sealed value");
    if (sealed.kid !== this.kid)
      throw new Error(
        `the data was sealed with another ${LOGINS_KEY_SOURCE}: key id ${sealed.kid}, the configured key's is ${this.kid}; configure the key it was written with`,
      );
    const plain = this.decrypt(sealed, context);
    if (plain === undefined)
      throw new Error(
        `the sealed data does not authenticate (key id ${sealed.kid}): it was altered or copied from another record, or sealed with another ${LOGINS_KEY_SOURCE}`,
      );
    return JSON.parse(plain) as JsonValue;
  }

  /** The plain text, or undefined when the value does not authenticate under this key. */
  private decrypt(sealed: SealedValue, context: string): string | undefined {
    const iv = Buffer.from(sealed.iv, "base64");
    const tag = Buffer.from(sealed.tag, "base64");
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined;
    const decipher = createDecipheriv("aes-256-gcm", this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(Buffer.from(sealed.ct, "base64")), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      return undefined;
    }
  }
}
