import { randomBytes } from "node:crypto";
import type { Registration } from "./types.js";
import { parseRegistration } from "./validate.js";
import { IdTemplate } from "./localpart.js";
import { localUsersRegexSource } from "./double-puppet.js";

/** A fresh secret: 32 bytes from the CSPRNG, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

/** An as_token and an hs_token, fresh and different. */
function tokenPair(): { as_token: string; hs_token: string } {
  const asToken = generateToken();
  let hsToken = generateToken();
  while (hsToken === asToken) hsToken = generateToken();
  return { as_token: asToken, hs_token: hsToken };
}

export interface GenerateRegistrationOptions {
  /** Unique, never-changing id of this bridge on the homeserver, e.g. "irc". */
  id: string;
  /** Where the homeserver reaches the bridge, e.g. "http://127.0.0.1:9000"; null for none. */
  url: string | null;
  /** The homeserver's server name, e.g. "example.org". */
  domain: string;
  /** Localpart of the bridge bot, e.g. "ircbot". */
  senderLocalpart: string;
  /** Ghost localpart template, e.g. "irc_{id}". */
  ghosts: string;
  /** Portal alias localpart template, e.g. "irc_{id}". Omit for a bridge with no aliases. */
  portals?: string;
  /** Third-party protocol ids the homeserver may ask about. */
  protocols?: string[];
  /**
   * Ask for typing notices, receipts and presence: sets `receive_ephemeral` and, for
   * homeservers older than its stabilisation, `de.sorunome.msc2409.push_ephemeral`.
   */
  receiveEphemeral?: boolean;
  /**
   * What end-to-bridge encryption needs from the homeserver: `org.matrix.msc3202` (device
   * lists and key counts in transactions), `io.element.msc4190` (devices without `/login`)
   * and the ephemeral opt-ins (MSC2409, which to-device messages ride on).
   */
  encryption?: boolean;
}

/** The registration keys end-to-bridge encryption needs, each true. */
export const ENCRYPTION_REGISTRATION_KEYS = [
  "org.matrix.msc3202",
  "io.element.msc4190",
  "receive_ephemeral",
  "de.sorunome.msc2409.push_ephemeral",
] as const;

/**
 * Builds a new registration: exclusive namespaces derived from the templates with the
 * domain escaped, `rate_limited: false`, and two fresh, different tokens. Validated before
 * it is returned.
 */
export function generateRegistration(opts: GenerateRegistrationOptions): Registration {
  const ghosts = new IdTemplate(opts.ghosts, opts.domain);
  const portals = opts.portals === undefined ? undefined : new IdTemplate(opts.portals, opts.domain);
  const reg: Registration = {
    id: opts.id,
    url: opts.url,
    ...tokenPair(),
    sender_localpart: opts.senderLocalpart,
    rate_limited: false,
    namespaces: {
      users: [{ regex: ghosts.userRegexSource(), exclusive: true }],
      aliases: portals ? [{ regex: portals.aliasRegexSource(), exclusive: true }] : [],
      rooms: [],
    },
  };
  if (opts.protocols && opts.protocols.length > 0) reg.protocols = opts.protocols;
  if (opts.receiveEphemeral) {
    reg.receive_ephemeral = true;
    reg["de.sorunome.msc2409.push_ephemeral"] = true;
  }
  if (opts.encryption) for (const key of ENCRYPTION_REGISTRATION_KEYS) reg[key] = true;
  return parseRegistration(reg, "generated registration");
}

export interface GenerateDoublePuppetOptions {
  /** The homeserver's server name: the namespace covers every user of it. */
  domain: string;
  /** The registration's id on the homeserver. Default "doublepuppet". */
  id?: string;
}

/**
 * Builds a double-puppet registration: `url: null` (the homeserver pushes nothing to it), a
 * non-exclusive users namespace covering every local user (`@.*:<escaped domain>`), so that
 * its as_token may act as them with `?user_id=` while they keep their accounts,
 * `rate_limited: false`, two fresh tokens and a random sender_localpart (the sender is
 * inside the namespace too, so it must not be anyone's name). Validated before it is returned.
 */
export function generateDoublePuppetRegistration(opts: GenerateDoublePuppetOptions): Registration {
  const reg: Registration = {
    id: opts.id ?? "doublepuppet",
    url: null,
    ...tokenPair(),
    sender_localpart: `doublepuppet_${randomBytes(12).toString("hex")}`,
    rate_limited: false,
    namespaces: {
      users: [{ regex: localUsersRegexSource(opts.domain), exclusive: false }],
      aliases: [],
      rooms: [],
    },
  };
  return parseRegistration(reg, "generated double-puppet registration");
}
