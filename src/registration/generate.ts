import { randomBytes } from "node:crypto";
import type { Registration } from "./types.js";
import { parseRegistration } from "./validate.js";
import { IdTemplate } from "./localpart.js";

/** A fresh secret: 32 bytes from the CSPRNG, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
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
}

/**
 * Builds a new registration: exclusive namespaces derived from the templates with the
 * domain escaped, `rate_limited: false`, and two fresh, different tokens. Validated before
 * it is returned.
 */
export function generateRegistration(opts: GenerateRegistrationOptions): Registration {
  const ghosts = new IdTemplate(opts.ghosts, opts.domain);
  const portals = opts.portals === undefined ? undefined : new IdTemplate(opts.portals, opts.domain);
  const asToken = generateToken();
  let hsToken = generateToken();
  while (hsToken === asToken) hsToken = generateToken();
  const reg: Registration = {
    id: opts.id,
    url: opts.url,
    as_token: asToken,
    hs_token: hsToken,
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
  return parseRegistration(reg, "generated registration");
}
