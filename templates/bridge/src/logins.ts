/**
 * Logins: Matrix users on the {{network}} network as themselves, through their own accounts.
 *
 * The framework does the rest (see adapter.ts `logins`): the `login` conversation in the
 * user's direct chat with the bot (and the provisioning API for bridge manager apps), field
 * checks, redacting the password from the room, storing the login (encrypted at rest with
 * config logins.encryptionKey), connecting it again at every start with backoff, routing the
 * user's Matrix events to their session, DM portals, `logins` / `logout`, and showing what
 * the account writes from another client as the Matrix user (double puppeting).
 * This file holds only what is about the network: how to sign in, and the session.
 */
import {
  PermanentError,
  type BridgeContext,
  type LoginInput,
  type LoginProcess,
  type LoginStep,
  type MatrixEdit,
  type MatrixMembership,
  type MatrixMessage,
  type MatrixReaction,
  type MatrixRedaction,
  type Portal,
  type RemoteMessageId,
  type RemoteSession,
  type SessionContext,
} from "matrix-bridgekit";
import { postOptions } from "./matrix-to-network.js";
import {
  AuthError,
  authorOf,
  roomOf,
  type InMemoryNetwork,
  type NetworkConnection,
  type NetworkEvent,
} from "./remote-network.js";

/** What a login keeps: the framework stores it and hands it to `connect` (after restarts too). */
export interface LoginData {
  /** A token, not the password: the password is used once, to sign in. */
  token: string;
}

/**
 * The password flow: one step asking for a username and a password, then signing in. The
 * framework makes one per attempt and never calls it twice at once; a restart forgets it.
 */
export class PasswordLogin implements LoginProcess {
  constructor(private readonly network: InMemoryNetwork) {}

  /**
   * The first step. In the management room the bot asks for each field in turn; a `password`
   * field is a secret: its answer is redacted from the room and never logged or quoted back.
   * `pattern` is checked (as a whole) before `submit` is called.
   */
  start(): Promise<LoginStep> {
    return Promise.resolve({
      type: "user_input",
      id: "{{network}}.password",
      instructions: "Log in to your {{network}} account.",
      fields: [
        { type: "username", id: "username", name: "Username", pattern: "[A-Za-z0-9_.-]{1,64}" },
        { type: "password", id: "password", name: "Password" },
      ],
    });
  }

  /**
   * The user's answers (every field present and checked). A PermanentError ends the login and
   * the user reads "Login failed: <its message>". The complete step names the account: the
   * framework stores it as a login and calls `connect`.
   */
  submit(input: LoginInput): Promise<LoginStep> {
    if (input.type !== "user_input") throw new Error("unreachable: the framework submits the step's type");
    const { username = "", password = "" } = input.values;
    let token: string;
    try {
      token = this.network.signIn(username, password);
    } catch (err) {
      if (err instanceof AuthError) throw new PermanentError(err.message);
      throw err; // anything else: "the remote network did not accept it", and the error is logged
    }
    const data: LoginData = { token };
    return Promise.resolve({
      type: "complete",
      id: "{{network}}.complete",
      instructions: `Logged in as ${username}.`,
      // `id` is the account's network user id: what the session sends `from` when the account
      // itself writes, and unique across the bridge (one Matrix user per account).
      login: { id: username, name: `${username} on {{network}}`, data: { ...data } },
    });
  }
}

/** How a network event reaches Matrix: the adapter's forwarding, through the session's context. */
export type Forward = (ctx: BridgeContext, event: NetworkEvent) => Promise<void>;

/**
 * One login's own connection (`connect` builds it). Its handlers get the events of its Matrix
 * user (in portals and in the login's DM portals) and act as the account: the network sees
 * alice, not `<Alice>` from the bot. The handler contract is the adapter's (one call at a time
 * per room, RetryableError / PermanentError). What it sends through `ctx` names the login.
 */
export class AccountSession implements RemoteSession {
  private readonly connection: NetworkConnection;
  /** Remote events are forwarded one at a time, in order. */
  private forwarding: Promise<void> = Promise.resolve();

  /** Throws a PermanentError when the network refuses the token: the login is `bad_credentials`. */
  constructor(
    private readonly network: InMemoryNetwork,
    private readonly ctx: SessionContext,
    private readonly forward: Forward,
    private readonly onClose: () => void,
  ) {
    try {
      this.connection = network.connectAccount(this.data.token, (event) => this.heard(event));
    } catch (err) {
      throw err instanceof AuthError ? new PermanentError(`{{network}} no longer accepts this login`) : err;
    }
  }

  /** The account's network user id: the login's id. */
  get account(): string {
    return this.ctx.login.id;
  }

  private get data(): LoginData {
    return this.ctx.login.data as unknown as LoginData;
  }

  // -- Network -> Matrix ----------------------------------------------------------------

  /**
   * Shared rooms are bridged once, by the adapter's own connection. A session bridges its
   * direct chats (into the login's DM portals) and what its account did from another client
   * (sent `from` the login's id: shown as the Matrix user when double puppeting is set up).
   */
  private heard(event: NetworkEvent): void {
    const room = roomOf(event);
    const direct = room !== undefined && this.network.room(room)?.direct === true;
    if (!direct && authorOf(event) !== this.account) return;
    this.forwarding = this.forwarding
      .then(async () => {
        if (direct && event.type === "message") {
          // The login's own portal of this chat: a private room its Matrix user is invited to.
          const other = [...this.network.room(room)!.members].filter((m) => m !== this.account);
          await this.ctx.portals.ensure(room, { direct: true, members: other });
        }
        await this.forward(this.ctx, event);
      })
      .catch((err: unknown) =>
        this.ctx.log.error({ err, event: event.type }, "a remote event was not bridged"),
      );
  }

  // -- Matrix -> network, as the account ------------------------------------------------

  /** Return the remote id: edits, redactions, replies and reactions then carry it. */
  async onMessage(message: MatrixMessage, portal: Portal): Promise<RemoteMessageId> {
    const opts = await postOptions(message, this.ctx);
    return this.connection.post(portal.remoteId, this.account, message.body, opts);
  }

  onEdit(edit: MatrixEdit, portal: Portal): Promise<void> {
    if (edit.target.remoteId !== undefined)
      this.connection.edit(portal.remoteId, this.account, edit.target.remoteId, edit.body);
    return Promise.resolve();
  }

  onRedaction(redaction: MatrixRedaction, portal: Portal): Promise<void> {
    if (redaction.target.remoteId !== undefined)
      this.connection.remove(portal.remoteId, this.account, redaction.target.remoteId);
    return Promise.resolve();
  }

  onReaction(reaction: MatrixReaction, portal: Portal): Promise<RemoteMessageId | void> {
    const target = reaction.target.remoteId;
    return Promise.resolve(
      target === undefined
        ? undefined
        : this.connection.react(portal.remoteId, this.account, target, reaction.key),
    );
  }

  /** The user joined or left a portal on Matrix: the account joins or leaves the room. */
  onMembership(membership: MatrixMembership, portal: Portal): Promise<void> {
    if (membership.userId !== this.ctx.login.userId) return Promise.resolve(); // a relayed user's
    if (membership.membership === "join") this.connection.join(portal.remoteId, this.account);
    else if (membership.membership === "leave" || membership.membership === "ban")
      this.connection.leave(portal.remoteId, this.account);
    return Promise.resolve();
  }

  /**
   * The user invited a ghost to a direct chat on Matrix: open the chat on the network. The
   * framework makes the Matrix room this login's DM portal of the returned room.
   */
  startDM(user: string): Promise<string> {
    if (!this.network.user(user)) throw new PermanentError(`there is no {{network}} user "${user}"`);
    return Promise.resolve(this.connection.openDM(this.account, user));
  }

  /** `logout`: sign out on the network (the token stops working), before `disconnect`. */
  logout(): Promise<void> {
    this.network.revoke(this.data.token);
    return Promise.resolve();
  }

  /** Closes the connection (shutdown, logout, a replaced login). Must not throw. */
  async disconnect(): Promise<void> {
    this.connection.close();
    this.onClose();
    await this.forwarding; // what was already heard reaches the outbox
  }
}
