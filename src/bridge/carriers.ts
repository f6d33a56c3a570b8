import type { MatrixHandlers, MatrixMessage, Portal, RemoteNetworkAdapter } from "../adapter/adapter.js";
import { PermanentError, RetryableError } from "../inbox/errors.js";
import { stateWords, type LiveLogin, type Logins } from "../users/logins.js";
import type { Permissions } from "../users/permissions.js";
import { escapeHtml } from "../formatting/entities.js";

/** Who carries a Matrix user's event to the remote network. */
export type Carrier =
  /** The user's own login: the remote network sees the user. */
  | { kind: "session"; handlers: MatrixHandlers; login: LiveLogin }
  /** The portal's relay login, naming the sender in the text. */
  | { kind: "relay"; handlers: MatrixHandlers; login: LiveLogin }
  /** The adapter's bot-level handlers. */
  | { kind: "bot"; handlers: MatrixHandlers };

export interface CarriersOptions {
  adapter: RemoteNetworkAdapter;
  permissions: Permissions;
  /** Undefined when the adapter has no logins capability. */
  logins?: Logins;
  /** How to tell a user to log in, e.g. "send `login` to @ircbot:example.org". */
  loginHint: string;
  relayFormat: string;
  relayEmoteFormat: string;
}

/**
 * Picks who carries each Matrix event (the routing of issue #15, in one place): the
 * sender's connected login, else the portal's relay login, else the adapter's bot-level
 * handlers, else nobody, and the sender is told to log in (a PermanentError: a dead letter
 * whose notice says so, not a retry). A login that is connecting or reconnecting makes the
 * event wait (RetryableError) rather than go out another way. Must not do I/O: it runs for
 * every event.
 */
export class Carriers {
  constructor(private readonly o: CarriersOptions) {}

  /**
   * The carrier of an event from `sender` in `portal`. `quiet` (memberships, room changes):
   * answer undefined instead of throwing when nobody can carry it.
   */
  of(sender: string, portal: Portal, quiet = false): Carrier | undefined {
    const level = this.o.permissions.level(sender);
    if (level === null) {
      if (quiet) return undefined;
      throw new PermanentError("you are not allowed to use this bridge");
    }
    const logins = this.o.logins;
    if (logins === undefined) return { kind: "bot", handlers: this.o.adapter };
    if (portal.login !== undefined) return this.dmCarrier(sender, portal, portal.login, logins, quiet);
    const own = logins.connectedOf(sender);
    if (own.login?.session) return { kind: "session", handlers: own.login.session, login: own.login };
    if (own.pending)
      throw new RetryableError("the sender's login is connecting", {
        userMessage: "your login is not connected yet",
      });
    if (portal.relay !== undefined) {
      const relay = logins.get(portal.relay);
      if (relay?.state === "connected" && relay.session)
        return { kind: "relay", handlers: relay.session, login: relay };
      if (relay?.state === "connecting" || relay?.state === "transient_disconnect")
        throw new RetryableError("the portal's relay login is connecting", {
          userMessage: "the room's relay is not connected",
        });
    }
    if (hasAnyHandler(this.o.adapter)) return { kind: "bot", handlers: this.o.adapter };
    if (quiet) return undefined;
    throw new PermanentError(
      `you are not logged in to the ${this.o.adapter.name} network: ${this.o.loginHint}`,
    );
  }

  /** A message as a relay login sends it: the sender named by the configured format. Pure. */
  relayed(message: MatrixMessage): MatrixMessage {
    const emote = message.msgtype === "m.emote";
    const format = emote ? this.o.relayEmoteFormat : this.o.relayFormat;
    const name = message.sender.displayName;
    const fill = (body: string, n: string, id: string) =>
      format.replace(/\{(name|userId|body)\}/g, (_, k: string) =>
        k === "name" ? n : k === "userId" ? id : body,
      );
    const out: MatrixMessage = {
      ...message,
      msgtype: emote ? "m.text" : message.msgtype,
      body: fill(message.body, name, message.sender.userId),
      relayed: true,
    };
    if (message.html !== undefined)
      out.html = fill(message.html, escapeHtml(name), escapeHtml(message.sender.userId));
    return out;
  }

  private dmCarrier(
    sender: string,
    portal: Portal,
    loginId: string,
    logins: Logins,
    quiet: boolean,
  ): Carrier | undefined {
    const owner = logins.get(loginId);
    if (owner?.userId !== sender) {
      if (quiet) return undefined;
      throw new PermanentError("this direct chat belongs to another user's login");
    }
    if (owner.state === "connected" && owner.session)
      return { kind: "session", handlers: owner.session, login: owner };
    if (owner.state === "connecting" || owner.state === "transient_disconnect")
      throw new RetryableError("the DM's login is connecting", {
        userMessage: "your login is not connected yet",
      });
    if (quiet) return undefined;
    throw new PermanentError(`your login ${owner.name} is ${stateWords(owner.state)}: ${this.o.loginHint}`);
  }
}

const HANDLERS = [
  "onMessage",
  "onEdit",
  "onRedaction",
  "onReaction",
  "onMembership",
  "onRoomChange",
] as const;

/** Whether the adapter has any bot-level handler (it relays without logins). */
function hasAnyHandler(adapter: RemoteNetworkAdapter): boolean {
  return HANDLERS.some((h) => typeof adapter[h] === "function");
}
