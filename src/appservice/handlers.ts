import type { Logger } from "../common/logger.js";
import type { DeadLetter } from "../inbox/dead-letters.js";
import type {
  DeviceKeyCounts,
  DeviceLists,
  EphemeralEvent,
  MatrixEvent,
  ToDeviceMessage,
} from "../matrix/events.js";

export type { DeviceKeyCounts } from "../matrix/events.js";
import type { ThirdPartyLocation, ThirdPartyProtocol, ThirdPartyUser } from "../matrix/third-party.js";

/** What every handler call is given besides its data. */
export interface HandlerContext {
  /**
   * Aborted when the handler's time is up (the call then counts as failed and is retried)
   * or when the bridge shuts down. A handler that outlives its timeout should stop on this
   * signal: if it still succeeds before its retry starts, the retry is skipped; if after,
   * the event may have been delivered twice.
   */
  readonly signal: AbortSignal;
  /** A logger bound to what is being handled (event and room ids, transaction id). */
  readonly log: Logger;
}

/** The context of a call made while processing a pushed transaction. */
export interface TransactionContext extends HandlerContext {
  /** The homeserver's transaction id (opaque). */
  readonly transactionId: string;
}

/** The homeserver's third-party questions. Each answer of null or [] becomes a 404. */
export interface ThirdPartyHandlers {
  /** The description of a protocol listed in the registration's `protocols`. */
  getProtocol?(protocol: string, ctx: HandlerContext): Promise<ThirdPartyProtocol | null>;
  /** Remote users matching `fields` (the query string, minus the access token). */
  lookupUser?(
    protocol: string,
    fields: Record<string, string>,
    ctx: HandlerContext,
  ): Promise<ThirdPartyUser[]>;
  /** Remote rooms matching `fields` (the query string, minus the access token). */
  lookupLocation?(
    protocol: string,
    fields: Record<string, string>,
    ctx: HandlerContext,
  ): Promise<ThirdPartyLocation[]>;
  /** The remote identities of a Matrix user id (reverse lookup; the id may be anyone's). */
  reverseLookupUser?(userId: string, ctx: HandlerContext): Promise<ThirdPartyUser[]>;
  /** The remote rooms behind a Matrix room alias (reverse lookup; the alias may be anyone's). */
  reverseLookupLocation?(alias: string, ctx: HandlerContext): Promise<ThirdPartyLocation[]>;
}

/**
 * What the application-service HTTP API hands its data to. The bridge core implements this
 * (routing to the remote-network adapter and to Intents); tests implement it directly.
 *
 * Contracts common to every method:
 * - a rejected promise (or a timeout) means "not handled": transaction data (recorded in
 *   the inbox before the homeserver got its 200) is retried with backoff while later events
 *   of its room wait, and dead-lettered when the retries run out or the error is a
 *   PermanentError (see src/inbox/errors.ts); for queries the homeserver gets 500
 *   `M_UNKNOWN` with a generic message (the error is logged, never returned);
 * - nothing is filtered by sender: the bridge's own echoes arrive like any other event, and
 *   suppressing them is the implementer's job;
 * - data the homeserver sent is passed through unchanged (validated, never rewritten).
 */
export interface AppserviceHandlers {
  /**
   * A room event (message or state; state events have a `state_key`, possibly "").
   * Events of one room are delivered one at a time in transaction order, across
   * transactions too; different rooms run in parallel. An event is delivered at most once
   * after it succeeded (recorded right after, before its room's next event), including
   * across restarts within the inbox's retention; after a failure it is delivered again on
   * the retry, and later events of its room wait for that.
   */
  onEvent(event: MatrixEvent, ctx: TransactionContext): Promise<void>;
  /**
   * Whether an event carries a secret (a password answering a login question): it is then
   * recorded without its content (the inbox's WITHHELD_KEY), handled from memory, and after a
   * restart handed over with only that key. Must not do I/O: it runs for every event.
   */
  holdsSecret?(event: MatrixEvent): boolean;
  /**
   * Typing, receipts, presence (`ephemeral` or its unstable spelling), once per transaction,
   * after it was acknowledged. Best effort: not recorded, never retried (a failure is logged).
   */
  onEphemeral?(events: EphemeralEvent[], ctx: TransactionContext): Promise<void>;
  /** To-device messages (`to_device` or `de.sorunome.msc2409.to_device`), once per transaction. */
  onToDevice?(messages: ToDeviceMessage[], ctx: TransactionContext): Promise<void>;
  /** Device list changes (`device_lists` or the MSC3202 spelling), once per transaction. */
  onDeviceLists?(lists: DeviceLists, ctx: TransactionContext): Promise<void>;
  /** One-time-key counts and unused fallback key types (any spelling), once per transaction. */
  onOneTimeKeyCounts?(counts: DeviceKeyCounts, ctx: TransactionContext): Promise<void>;
  /**
   * Does this user (already known to be in the users namespace) exist on the remote side?
   * Must register the ghost on the homeserver BEFORE resolving true.
   */
  queryUser?(userId: string, ctx: HandlerContext): Promise<boolean>;
  /**
   * Does this alias (already known to be in the aliases namespace) name a remote room?
   * The room with that alias must exist BEFORE resolving true.
   */
  queryRoomAlias?(alias: string, ctx: HandlerContext): Promise<boolean>;
  /**
   * The Matrix user id for a third-party URI (`irc://irc.example.org/alice`), or null.
   * The id must be in the users namespace.
   */
  userFromUri?(uri: URL, ctx: HandlerContext): Promise<string | null>;
  /**
   * The room alias for a third-party URI (`xmpp:room@muc.example.org`), or null.
   * The alias must be in the aliases namespace.
   */
  aliasFromUri?(uri: URL, ctx: HandlerContext): Promise<string | null>;
  /** Third-party protocol descriptions and lookups. */
  thirdParty?: ThirdPartyHandlers;
  /**
   * An item was given up on and stored as a dead letter (tell the sender). A rejection is
   * logged; nothing waits for it.
   */
  onDeadLetter?(letter: DeadLetter): Promise<void>;
  /** The homeserver pinged us (`POST /ping`), with the id it was asked to send, if any. */
  onPing?(transactionId: string | undefined, ctx: HandlerContext): Promise<void>;
}
