/** One entry of a namespace list in the registration file. */
export interface NamespaceEntry {
  /** A regular expression, matched the way Synapse does: anchored at the start only. */
  regex: string;
  /** Whether only this application service may use ids matching `regex`. */
  exclusive: boolean;
  [unknown: string]: unknown;
}

export interface Namespaces {
  users: NamespaceEntry[];
  aliases: NamespaceEntry[];
  rooms: NamespaceEntry[];
  [unknown: string]: unknown;
}

/**
 * An application-service registration, as the homeserver reads it. Keys this type does not
 * name are kept as they were loaded and written back on save.
 */
export interface Registration {
  id: string;
  /** Where the homeserver pushes to; null means it pushes nothing. */
  url: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  namespaces: Namespaces;
  rate_limited?: boolean;
  protocols?: string[];
  receive_ephemeral?: boolean;
  "de.sorunome.msc2409.push_ephemeral"?: boolean;
  "org.matrix.msc3202"?: boolean;
  "io.element.msc4190"?: boolean;
  [unknown: string]: unknown;
}

export type NamespaceKind = "users" | "aliases" | "rooms";
export const NAMESPACE_KINDS: readonly NamespaceKind[] = ["users", "aliases", "rooms"];
