/**
 * Reversible escaping of arbitrary remote ids into Matrix localparts, following the
 * specification's suggested mapping (appendix "Mapping from other character sets"):
 * the id is taken as UTF-8; `A-Z` become `_` + lowercase, `_` becomes `__`, bytes in
 * `a-z0-9.-/` stay, and every other byte (including `=`) becomes `=` + two lowercase hex
 * digits. `Alice|away` -> `_alice=7caway`. Every output uses only `a-z0-9._=-/`, which every
 * homeserver accepts, and unescapes back to exactly the input.
 */

const PLAIN = /^[a-z0-9.\-/]$/;
const HEX = "0123456789abcdef";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The longest user id or alias the specification allows, in bytes. */
export const MAX_MATRIX_ID_LENGTH = 255;

export function escapeLocalpart(id: string): string {
  if (!id.isWellFormed()) {
    throw new TypeError("cannot escape a remote id with unpaired UTF-16 surrogates into a Matrix localpart");
  }
  let out = "";
  for (const byte of encoder.encode(id)) {
    const ch = String.fromCharCode(byte);
    if (byte >= 0x41 && byte <= 0x5a) out += "_" + ch.toLowerCase();
    else if (ch === "_") out += "__";
    else if (PLAIN.test(ch)) out += ch;
    else out += "=" + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

/**
 * Reverses escapeLocalpart. Returns null for a string escapeLocalpart could not have
 * produced (bad escape, invalid UTF-8, or a non-canonical spelling), so that the mapping
 * stays one-to-one.
 */
export function unescapeLocalpart(localpart: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    const ch = localpart[i]!;
    if (ch === "_") {
      const next = localpart[i + 1];
      if (next === "_") bytes.push(0x5f);
      else if (next !== undefined && next >= "a" && next <= "z") bytes.push(next.toUpperCase().charCodeAt(0));
      else return null;
      i++;
    } else if (ch === "=") {
      const hex = localpart.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (PLAIN.test(ch)) bytes.push(ch.charCodeAt(0));
    else return null;
  }
  let id: string;
  try {
    id = decoder.decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
  return escapeLocalpart(id) === localpart ? id : null;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/**
 * A localpart template such as `irc_{id}`: turns a remote id into a user id or alias on one
 * domain, and parses one back. The literal parts are used as written, so they must be valid
 * localpart characters themselves.
 */
export class IdTemplate {
  readonly prefix: string;
  readonly suffix: string;

  constructor(
    readonly template: string,
    readonly domain: string,
  ) {
    const parts = template.split("{id}");
    if (parts.length !== 2) throw new TypeError(`template "${template}" must contain {id} exactly once`);
    const [prefix, suffix] = parts as [string, string];
    for (const literal of [prefix, suffix]) {
      if (!/^[a-z0-9._=\-/]*$/.test(literal)) {
        throw new TypeError(
          `template "${template}" may only use a-z 0-9 . _ = - / outside {id}, got "${literal}"`,
        );
      }
    }
    if (domain === "" || /[\s/@#!]/.test(domain)) throw new TypeError(`"${domain}" is not a server name`);
    this.prefix = prefix;
    this.suffix = suffix;
  }

  /** The localpart for a remote id, e.g. `irc_alice`. */
  localpart(remoteId: string): string {
    return this.prefix + escapeLocalpart(remoteId) + this.suffix;
  }

  /** `@irc_alice:example.org`. Throws if the result exceeds the 255-byte limit. */
  userId(remoteId: string): string {
    return this.checkLength(`@${this.localpart(remoteId)}:${this.domain}`);
  }

  /** `#irc_alice:example.org`. Throws if the result exceeds the 255-byte limit. */
  alias(remoteId: string): string {
    return this.checkLength(`#${this.localpart(remoteId)}:${this.domain}`);
  }

  /** The remote id behind a user id made by this template, or null if it is not one. */
  parseUserId(userId: string): string | null {
    return this.parse(userId, "@");
  }

  /** The remote id behind an alias made by this template, or null if it is not one. */
  parseAlias(alias: string): string | null {
    return this.parse(alias, "#");
  }

  /** A users-namespace regex covering every id this template makes, e.g. `@irc_.*:example\.org`. */
  userRegexSource(): string {
    return `@${escapeRegex(this.prefix)}.*${escapeRegex(this.suffix)}:${escapeRegex(this.domain)}`;
  }

  /** An aliases-namespace regex covering every alias this template makes. */
  aliasRegexSource(): string {
    return `#${escapeRegex(this.prefix)}.*${escapeRegex(this.suffix)}:${escapeRegex(this.domain)}`;
  }

  private parse(id: string, sigil: string): string | null {
    if (!id.startsWith(sigil)) return null;
    const colon = id.indexOf(":");
    if (colon < 0 || id.slice(colon + 1) !== this.domain) return null;
    const localpart = id.slice(1, colon);
    if (localpart.length < this.prefix.length + this.suffix.length) return null;
    if (!localpart.startsWith(this.prefix) || !localpart.endsWith(this.suffix)) return null;
    return unescapeLocalpart(localpart.slice(this.prefix.length, localpart.length - this.suffix.length));
  }

  private checkLength(id: string): string {
    if (Buffer.byteLength(id) > MAX_MATRIX_ID_LENGTH) {
      throw new RangeError(
        `${id.slice(0, 60)}… is longer than the ${MAX_MATRIX_ID_LENGTH} bytes Matrix allows`,
      );
    }
    return id;
  }
}
