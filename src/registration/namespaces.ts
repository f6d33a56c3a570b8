import { compileNamespaceRegex } from "./regex.js";
import { NAMESPACE_KINDS, type NamespaceKind, type Registration } from "./types.js";

interface CompiledEntry {
  regex: RegExp;
  exclusive: boolean;
}

/** The parts of an event `isInterested` looks at. */
export interface InterestEvent {
  type?: string;
  sender?: string;
  room_id?: string;
  state_key?: string;
}

/**
 * The registration's namespaces, compiled once. Matching follows Synapse: each regex is
 * applied with Python's `re.match` semantics (anchored at the start, not at the end), and a
 * user id matches the users namespace only if it is local (its server name is `domain`).
 */
export class NamespaceMatcher {
  private readonly compiled: Record<NamespaceKind, CompiledEntry[]>;
  /** The bridge bot, `@{sender_localpart}:{domain}`. */
  readonly botUserId: string;

  constructor(
    registration: Registration,
    /** The homeserver's server name, e.g. "example.org". */
    readonly domain: string,
  ) {
    this.compiled = Object.fromEntries(
      NAMESPACE_KINDS.map((kind) => [
        kind,
        (registration.namespaces[kind] ?? []).map((e) => ({
          regex: compileNamespaceRegex(e.regex),
          exclusive: e.exclusive,
        })),
      ]),
    ) as Record<NamespaceKind, CompiledEntry[]>;
    this.botUserId = `@${registration.sender_localpart}:${domain}`;
  }

  /** True if a local user id matches the users namespace. Pure, no I/O. */
  isUserInNamespace(userId: string): boolean {
    return this.isLocal(userId) && this.matches("users", userId);
  }

  /** True if a local user id matches an exclusive users-namespace entry. */
  isUserExclusive(userId: string): boolean {
    return this.isLocal(userId) && this.matches("users", userId, true);
  }

  /** True if the framework may act as this user: in the users namespace, or the bot itself. */
  mayActAs(userId: string): boolean {
    return userId === this.botUserId || this.isUserInNamespace(userId);
  }

  isAliasInNamespace(alias: string): boolean {
    return this.matches("aliases", alias);
  }

  isAliasExclusive(alias: string): boolean {
    return this.matches("aliases", alias, true);
  }

  isRoomInNamespace(roomId: string): boolean {
    return this.matches("rooms", roomId);
  }

  isRoomExclusive(roomId: string): boolean {
    return this.matches("rooms", roomId, true);
  }

  /**
   * The specification's interest rule: the sender, or the target of a membership event, is
   * one of ours (namespace or bot); or the room id is in the rooms namespace; or one of the
   * room's aliases (when the caller knows them) is in the aliases namespace.
   */
  isInterested(event: InterestEvent, roomAliases: readonly string[] = []): boolean {
    if (event.sender !== undefined && this.mayActAs(event.sender)) return true;
    if (event.type === "m.room.member" && event.state_key !== undefined && this.mayActAs(event.state_key)) {
      return true;
    }
    if (event.room_id !== undefined && this.isRoomInNamespace(event.room_id)) return true;
    return roomAliases.some((alias) => this.isAliasInNamespace(alias));
  }

  private isLocal(userId: string): boolean {
    const colon = userId.indexOf(":");
    return userId.startsWith("@") && colon > 1 && userId.slice(colon + 1) === this.domain;
  }

  private matches(kind: NamespaceKind, id: string, exclusiveOnly = false): boolean {
    return this.compiled[kind].some((e) => (!exclusiveOnly || e.exclusive) && e.regex.test(id));
  }
}
