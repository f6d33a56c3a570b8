import { LRUCache } from "lru-cache";
import type { AdapterCommand, BridgeUser, CallContext, CommandContext, Portal } from "../adapter/adapter.js";
import { closest } from "../config/suggest.js";
import { PermanentError } from "../inbox/errors.js";
import { WITHHELD_KEY } from "../inbox/inbox.js";
import type { MatrixEvent } from "../matrix/events.js";
import { UserFacingError } from "../users/errors.js";
import { atLeast } from "../users/permissions.js";
import { builtinCommands } from "./builtins.js";
import { ChatLogins } from "./chat-login.js";
import { commandLine, parseArguments } from "./parse.js";
import { capitalise, noticeContent } from "./notice.js";
import type { Command, CommandServices, Invocation } from "./types.js";

/** How far back the bot reads a room it was just invited to (see Commands.catchUp). */
const CATCH_UP_LIMIT = 20;

/**
 * The bot's commands: which messages are commands (all of the user's in their management
 * room, prefixed ones elsewhere), who may run which, and answering every one, errors
 * included ("Unknown command", "you need a login", why it failed). A command never reaches
 * the adapter's message handlers. Also the management room itself: the bot joins when a
 * user who may use the bridge invites it to a DM, greets with help, and forgets the room
 * when the user leaves it.
 */
export class Commands {
  private readonly chat: ChatLogins;
  private readonly commands: Command[];
  /** Management room -> its user ("none" for rooms that are not one), so most rooms cost no store read. */
  private readonly owners = new LRUCache<string, string>({ max: 10_000 });
  /** Messages handled by catchUp, so the same message pushed later is not handled twice. */
  private readonly caughtUp = new LRUCache<string, true>({ max: 1_000 });

  constructor(private readonly s: CommandServices) {
    this.chat = new ChatLogins(s);
    this.commands = builtinCommands(
      s,
      this.chat,
      () => this.commands,
      (userId, text) => this.tell(userId, text),
    );
    const builtin = new Set(this.commands.map((c) => c.name));
    for (const command of s.adapter.commands ?? []) {
      if (builtin.has(command.name))
        throw new Error(
          `the ${s.adapter.name} adapter's command "${command.name}" has the name of a built-in one`,
        );
      this.commands.push(this.fromAdapter(command));
    }
  }

  /**
   * Whether an event may carry a secret, so the inbox records it without its content: a
   * `login-matrix <token>` command anywhere, and every message of a user in their management
   * room (known from the cache) or in a room where a login conversation waits for them. The
   * whole management room rather than only answers to secret fields: an answer can be
   * recorded before the question was asked, when messages come faster than they are handled.
   * Must not do I/O.
   */
  holdsSecret(event: MatrixEvent): boolean {
    if (event.type !== "m.room.message") return false;
    const body = event.content.body;
    if (typeof body !== "string") return false;
    return (
      SECRET_COMMAND.test(body) ||
      this.owners.peek(event.room_id) === event.sender ||
      this.chat.waitsForInput(event.sender, event.room_id)
    );
  }

  /**
   * A message event from a Matrix user (not a ghost or the bot). Returns true when it was a
   * command or an answer in a login conversation, and was handled here.
   */
  async onMessage(event: MatrixEvent, portal: Portal | null, call: CallContext): Promise<boolean> {
    if (event.content[WITHHELD_KEY] === true) {
      // Recorded without its secret, and the bridge restarted before handling it.
      await this.reply(
        event.room_id,
        "I restarted before reading your last message, and I never store messages holding a secret: please send it again (a login starts over with `login`).",
      );
      return true;
    }
    if (event.type !== "m.room.message" || event.content.msgtype !== "m.text") return false;
    const body = event.content.body;
    if (typeof body !== "string") return false;
    if (this.caughtUp.has(event.event_id)) return true;
    return this.handle(event, body, portal, call);
  }

  /** onMessage for a text message not handled before. */
  private async handle(
    event: MatrixEvent,
    body: string,
    portal: Portal | null,
    call: CallContext,
  ): Promise<boolean> {
    const managementRoom = portal === null && (await this.ownerOf(event.room_id)) === event.sender;
    // Most messages (in portals) are no command: answered before any lookup or allocation.
    if (!managementRoom && commandLine(body, this.s.prefix) === null) return false;
    const level = this.s.permissions.level(event.sender);
    if (level === null) {
      if (managementRoom && commandLine(body, this.s.prefix) === null) return false;
      await this.reply(event.room_id, "You are not allowed to use this bridge.");
      return true;
    }
    const inv = this.invocation(event, { userId: event.sender, permission: level }, portal, managementRoom);
    if (
      managementRoom &&
      this.chat.waitsForInput(event.sender, event.room_id) &&
      body.trim().toLowerCase() !== "cancel"
    ) {
      await this.chat.input(inv, body, call);
      return true;
    }
    const line = commandLine(body, managementRoom ? undefined : this.s.prefix);
    if (line === null) return false;
    await this.run(line.name, line.rest, inv, call);
    return true;
  }

  /** The bot was invited somewhere. */
  async onBotInvite(event: MatrixEvent): Promise<void> {
    const level = this.s.permissions.level(event.sender);
    if (level === null) {
      await this.s.bot
        .leave(event.room_id, "you are not allowed to use this bridge")
        .catch((err: unknown) =>
          this.s.log.warn({ err, roomId: event.room_id }, "could not reject an invite"),
        );
      return;
    }
    await this.s.bot.join(event.room_id);
    const call: CallContext = { signal: new AbortController().signal, log: this.s.log };
    if (event.content.is_direct === true) {
      await this.setManagementRoom(event.sender, event.room_id);
      const inv = this.invocation(event, { userId: event.sender, permission: level }, null, true);
      await inv.reply(
        `Hello! I am the ${this.s.adapter.name} bridge bot. This room is where you manage your bridging.`,
      );
      await this.run("help", "", inv, call);
    } else {
      await this.reply(event.room_id, `Hello! Send \`${this.s.prefix} help\` for what I can do here.`);
    }
    await this.catchUp(event, call);
  }

  /**
   * Handles what the inviter wrote between the invite and the bot's join: the homeserver
   * pushes a room's events to the bridge only once one of its users has joined, so a `login`
   * typed right after opening the DM would otherwise never be answered. Reads the newest page
   * of the timeline as the bot; when it reaches back to the invite, handles the inviter's
   * messages after it, oldest first (nothing older: an old room's commands are never
   * replayed). Best effort: history the room hides from the bot cannot be read.
   */
  private async catchUp(invite: MatrixEvent, call: CallContext): Promise<void> {
    let page: { chunk: MatrixEvent[] };
    try {
      page = await this.s.bot.messages(invite.room_id, { dir: "b", limit: CATCH_UP_LIMIT });
    } catch (err) {
      this.s.log.warn({ err, roomId: invite.room_id }, "could not read what was said before the bot joined");
      return;
    }
    const missed: MatrixEvent[] = [];
    for (const event of page.chunk) {
      if (event.event_id === invite.event_id) {
        for (const message of missed.reverse()) {
          const body = message.content.body;
          if (message.content.msgtype !== "m.text" || typeof body !== "string") continue;
          this.caughtUp.set(message.event_id, true);
          await this.handle(message, body, null, call);
        }
        return;
      }
      if (event.sender === invite.sender && event.type === "m.room.message") missed.push(event);
    }
    if (missed.length > 0)
      this.s.log.info(
        { roomId: invite.room_id, messages: missed.length },
        "messages before the bot joined were not handled: the invite is further back than the bot reads",
      );
  }

  /** A user left a room: when it was their management room, it is one no longer. */
  async onLeave(userId: string, roomId: string): Promise<void> {
    if ((await this.ownerOf(roomId)) !== userId) return;
    await this.setManagementRoom(userId, undefined, roomId);
    await this.s.bot.leave(roomId).catch(() => undefined);
  }

  /**
   * Tells a user something in their management room, making one (a DM from the bot) when
   * they have none. Never throws: a notice that cannot be sent is logged.
   */
  async tell(userId: string, text: string): Promise<void> {
    try {
      let roomId = (await this.s.users.getUser(userId))?.managementRoom;
      if (roomId === undefined) {
        roomId = await this.s.bot.createRoom({
          preset: "trusted_private_chat",
          is_direct: true,
          invite: [userId],
          name: `${this.s.adapter.name} bridge`,
        });
        await this.setManagementRoom(userId, roomId);
      }
      await this.reply(roomId, text);
    } catch (err) {
      this.s.log.warn({ err, userId }, "could not tell a user about their login");
    }
  }

  private async run(name: string, rest: string, inv: Invocation, call: CallContext): Promise<void> {
    try {
      const command = this.commands.find((c) => c.name === name);
      if (!command) {
        const guess = closest(
          name,
          this.commands.map((c) => c.name),
        );
        const help = inv.managementRoom ? "`help`" : `\`${this.s.prefix} help\``;
        throw new UserFacingError(
          "not_found",
          `unknown command "${name}"${guess ? `; did you mean \`${guess}\`?` : "."} Send ${help} for the list`,
        );
      }
      this.check(command, inv);
      const args = parseArguments(command.name, command.args, rest);
      await command.run(args, inv, call);
    } catch (err) {
      if (err instanceof UserFacingError) await inv.reply(`${capitalise(err.message)}.`);
      else if (err instanceof PermanentError) await inv.reply(`${capitalise(err.userMessage)}.`);
      else {
        this.s.log.error({ err, command: name }, "command failed");
        await inv.reply(`The command failed unexpectedly; the bridge's log says why.`);
      }
    }
  }

  /** Throws what the user lacks to run `command` here. */
  private check(command: Command, inv: Invocation): void {
    const needed = command.requires === "login" ? "user" : command.requires;
    if (!atLeast(inv.user.permission, needed))
      throw new UserFacingError(
        "forbidden",
        needed === "admin"
          ? `\`${command.name}\` is for bridge admins`
          : `you may not use \`${command.name}\` (you can only be relayed)`,
      );
    if (command.requires === "login" && !this.s.logins?.live.connectedOf(inv.user.userId).login)
      throw new UserFacingError(
        "forbidden",
        `\`${command.name}\` needs a connected login: send \`login\` first`,
      );
    if (command.where === "portal" && !inv.portal)
      throw new UserFacingError("bad_state", `\`${command.name}\` works in a bridged room only`);
    if (command.where === "not-portal" && inv.portal)
      throw new UserFacingError("bad_state", `this room is bridged already (to ${inv.portal.remoteId})`);
  }

  private fromAdapter(command: AdapterCommand): Command {
    const logins = this.s.logins;
    const out: Command = {
      name: command.name,
      help: command.help,
      requires: command.requires ?? "user",
      run: async (args, inv, call) => {
        const login = logins?.live.connectedOf(inv.user.userId).login;
        const ctx: CommandContext = {
          user: inv.user,
          roomId: inv.roomId,
          ...(inv.portal ? { portal: inv.portal } : {}),
          ...(login?.session ? { login: { login, session: login.session } } : {}),
          reply: (text, html) => this.reply(inv.roomId, text, html),
        };
        await command.run(args, ctx, call);
      },
    };
    if (command.args) out.args = command.args;
    return out;
  }

  private invocation(
    event: MatrixEvent,
    user: BridgeUser,
    portal: Portal | null,
    managementRoom: boolean,
  ): Invocation {
    const inv: Invocation = {
      user,
      roomId: event.room_id,
      eventId: event.event_id,
      managementRoom,
      reply: (text: string) => this.reply(event.room_id, text),
    };
    if (portal) inv.portal = portal;
    return inv;
  }

  private async reply(roomId: string, text: string, html?: string): Promise<void> {
    try {
      await this.s.bot.sendMessage(roomId, noticeContent(text, html));
    } catch (err) {
      this.s.log.warn({ err, roomId }, "could not answer a command");
    }
  }

  private async ownerOf(roomId: string): Promise<string | undefined> {
    const cached = this.owners.get(roomId);
    if (cached !== undefined) return cached === "none" ? undefined : cached;
    const owner = await this.s.users.userByManagementRoom(roomId);
    this.owners.set(roomId, owner ?? "none");
    return owner;
  }

  private async setManagementRoom(userId: string, roomId: string | undefined, old?: string): Promise<void> {
    await this.s.users.ensureUser(userId);
    const before = (await this.s.users.getUser(userId))?.managementRoom;
    await this.s.users.setManagementRoom(userId, roomId);
    for (const r of [before, old]) if (r !== undefined) this.owners.set(r, "none");
    if (roomId !== undefined) this.owners.set(roomId, userId);
  }
}

/** `login-matrix <token>`, with or without a prefix: a command that carries a secret. */
const SECRET_COMMAND = /^\s*(?:\S+\s+)?login-matrix(?:\s|$)/i;
