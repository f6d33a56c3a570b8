/**
 * Third-party network types of the application-service API (`/thirdparty/...`), as the spec
 * defines them. The adapter contract and the appservice handlers share these.
 */

/** How a field of a protocol is entered. */
export interface ThirdPartyFieldType {
  /** A regular expression the value must match. */
  regexp: string;
  /** An example value, shown to users. */
  placeholder: string;
}

/** One network (server) of a protocol. */
export interface ThirdPartyProtocolInstance {
  /** A human-readable description, e.g. "Libera Chat". */
  desc: string;
  /** An mxc:// URL. */
  icon?: string;
  /** Preset values of fields for this instance, e.g. `{ network: "libera" }`. */
  fields: Record<string, unknown>;
  /** The network id (used by the per-network room directory). */
  network_id: string;
}

/** A protocol description, as `GET /thirdparty/protocol/{protocol}` returns it. */
export interface ThirdPartyProtocol {
  /** Fields that identify a user, in order, e.g. `["network", "nick"]`. */
  user_fields: string[];
  /** Fields that identify a room, e.g. `["network", "channel"]`. */
  location_fields: string[];
  /** An mxc:// URL (may be ""). */
  icon: string;
  field_types: Record<string, ThirdPartyFieldType>;
  instances: ThirdPartyProtocolInstance[];
}

/** A remote user found by a third-party lookup or reverse lookup. */
export interface ThirdPartyUser {
  /** The Matrix user id (our ghost). */
  userid: string;
  protocol: string;
  fields: Record<string, string>;
}

/** A remote room found by a third-party lookup or reverse lookup. */
export interface ThirdPartyLocation {
  /** The Matrix room alias (our portal's). */
  alias: string;
  protocol: string;
  fields: Record<string, string>;
}
