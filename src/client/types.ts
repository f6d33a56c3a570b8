/** Shapes of the client-server calls a bridge makes. Only what the framework uses is typed. */

export type RoomPreset = "private_chat" | "public_chat" | "trusted_private_chat";

/** An initial state event for createRoom. */
export interface InitialStateEvent {
  type: string;
  state_key?: string;
  content: Record<string, unknown>;
}

/** `POST /_matrix/client/v3/createRoom`, in the specification's own field names. */
export interface CreateRoomOptions {
  /** The alias localpart: "irc_chan" makes `#irc_chan:{domain}`. */
  room_alias_name?: string;
  name?: string;
  topic?: string;
  /** Users to invite. */
  invite?: string[];
  preset?: RoomPreset;
  visibility?: "public" | "private";
  is_direct?: boolean;
  /** Merged over the preset's power levels. */
  power_level_content_override?: Record<string, unknown>;
  initial_state?: InitialStateEvent[];
  creation_content?: Record<string, unknown>;
  room_version?: string;
  [key: string]: unknown;
}

export interface ClientSendOptions {
  /** The remote time of the event, ms since the epoch (an integer): becomes `origin_server_ts`. */
  ts?: number;
  /**
   * The transaction id; a retried request reuses it so the homeserver deduplicates. Pass your
   * own to make a send idempotent across restarts; by default one is generated per call.
   */
  txnId?: string;
}

export interface ClientStateOptions {
  /** The remote time of the event, ms since the epoch (an integer). */
  ts?: number;
}

/** A message to a room from an Intent: content plus the link back to the remote network. */
export interface IntentSendOptions extends ClientSendOptions {
  /** Added to the content as `external_url`, a link to the message on the remote network. */
  externalUrl?: string;
}

export interface UploadOptions {
  contentType?: string;
  filename?: string;
}

export interface DownloadedMedia {
  data: Uint8Array;
  contentType: string | undefined;
}

export type Presence = "online" | "offline" | "unavailable";

/** What `register` did. */
export interface RegisterResult {
  userId: string;
  /** False when the user already existed (`M_USER_IN_USE`). */
  created: boolean;
}

/** One HTTP call, as told to the `onRequest` hook (never with the token). */
export interface RequestInfo {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The user asserted with `?user_id=`, if any. */
  userId: string | undefined;
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: number;
}

/** One HTTP attempt's outcome, as told to the `onResponse` hook (for metrics). */
export interface ResponseInfo {
  method: string;
  /** The endpoint with its ids replaced, e.g. `/rooms/{roomId}/send/{type}/{txnId}`; "other" if unknown. */
  endpoint: string;
  /** The HTTP status, or undefined when no answer came (connection error, timeout). */
  status: number | undefined;
  /** From sending the request to reading the whole answer (time waiting for a slot excluded). */
  seconds: number;
}
