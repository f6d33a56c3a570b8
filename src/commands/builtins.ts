import { stateWords, type LoginStatus } from "../users/logins.js";
import { UserFacingError } from "../users/errors.js";
import { atLeast } from "../users/permissions.js";
import type { ChatLogins } from "./chat-login.js";
import { usage } from "./parse.js";
import type { Command, CommandServices, Invocation } from "./types.js";

/** How `logins` shows one login. */
export function describeLogin(s: LoginStatus): string {
  const state = stateWords(s.state);
  return `${s.name} (${s.id}): ${state}${s.message ? ` (${s.message})` : ""}`;
}

/** Power level 50 (moderator) or more in the room, or a bridge admin. */
async function mayManageRoom(s: CommandServices, inv: Invocation): Promise<boolean> {
  if (inv.user.permission === "admin") return true;
  const levels = await s.bot.getStateEvent(inv.roomId, "m.room.power_levels").catch(() => undefined);
  const users = (levels?.users ?? {}) as Record<string, unknown>;
  const level = users[inv.user.userId] ?? levels?.users_default ?? 0;
  return typeof level === "number" && level >= 50;
}

/** The logins capability, or the answer that the bridge has none. */
export function needLogins(s: CommandServices): NonNullable<CommandServices["logins"]> {
  if (!s.logins) throw new UserFacingError("unsupported", `the ${s.adapter.name} bridge has no logins`);
  return s.logins;
}

/** The built-in commands. `all` is every command (adapter's included), for `help`. */
export function builtinCommands(
  s: CommandServices,
  chat: ChatLogins,
  all: () => readonly Command[],
  tellPrivately: (userId: string, text: string) => Promise<void>,
): Command[] {
  const commands: Command[] = [
    {
      name: "help",
      help: "this list",
      requires: "relay",
      async run(_args, inv) {
        const visible = all().filter((c) =>
          atLeast(inv.user.permission, c.requires === "login" ? "user" : c.requires),
        );
        const how = inv.managementRoom
          ? "Commands (no prefix needed here):"
          : `Commands (start them with ${s.prefix}; in a DM with me, no prefix is needed):`;
        await inv.reply([how, ...visible.map((c) => `\`${usage(c.name, c.args)}\`: ${c.help}`)].join("\n"));
      },
    },
    {
      name: "version",
      help: "which bridge this is",
      requires: "relay",
      async run(_args, inv) {
        await inv.reply(`${s.adapter.name} bridge, matrix-bridgekit ${s.version}`);
      },
    },
    {
      name: "ping",
      help: "is the bridge there, and your logins' states",
      requires: "relay",
      async run(_args, inv) {
        const mine = s.logins ? await s.logins.live.of(inv.user.userId) : [];
        await inv.reply(
          mine.length === 0
            ? "Pong. You have no logins."
            : ["Pong. Your logins:", ...mine.map((l) => `- ${describeLogin(l)}`)].join("\n"),
        );
      },
    },
    {
      name: "login",
      help: "log in to your remote account",
      args: [{ name: "flow", optional: true }],
      requires: "user",
      async run(args, inv, call) {
        needLogins(s);
        if (!inv.managementRoom) {
          // Answers (passwords among them) are read only in the management room: elsewhere they
          // would be ordinary messages, bridged like any other.
          await tellPrivately(inv.user.userId, "Send `login` here to log in.");
          throw new UserFacingError(
            "bad_state",
            "log in in a direct chat with me, not here: I have sent you one",
          );
        }
        await chat.start(inv, typeof args.flow === "string" ? args.flow : undefined, call);
      },
    },
    {
      name: "cancel",
      help: "stop the login in progress",
      requires: "user",
      async run(_args, inv) {
        await inv.reply((await chat.cancel(inv.user)) ? "Login cancelled." : "No login is in progress.");
      },
    },
    {
      name: "logins",
      help: "your logins and their states",
      requires: "user",
      async run(_args, inv) {
        const mine = await needLogins(s).live.of(inv.user.userId);
        await inv.reply(
          mine.length === 0
            ? "You have no logins. Send `login` to add one."
            : mine.map((l) => `- ${describeLogin(l)}`).join("\n"),
        );
      },
    },
    {
      name: "logout",
      help: "log out of one login, or all",
      args: [{ name: "login", optional: true }],
      requires: "user",
      async run(args, inv, call) {
        const { live } = needLogins(s);
        const mine = await live.of(inv.user.userId);
        const which = typeof args.login === "string" ? args.login : undefined;
        let targets: LoginStatus[];
        if (which === "all") targets = mine;
        else if (which !== undefined) targets = mine.filter((l) => l.id === which || l.name === which);
        else if (mine.length <= 1) targets = mine;
        else
          throw new UserFacingError(
            "bad_input",
            "you have several logins: say which (see `logins`), or `logout all`",
          );
        if (targets.length === 0)
          throw new UserFacingError(
            "not_found",
            which === undefined || which === "all" ? "you have no logins" : `you have no login "${which}"`,
          );
        for (const login of targets) await live.logout(login.id, call);
        await inv.reply(`Logged out: ${targets.map((l) => l.name).join(", ")}.`);
      },
    },
    {
      name: "relay",
      help: "`relay set [login]`: your login carries messages of people without one in this room; `relay unset`",
      args: [{ name: "action" }, { name: "login", optional: true }],
      requires: "login",
      where: "portal",
      async run(args, inv) {
        const portal = inv.portal!;
        if (!(await mayManageRoom(s, inv)))
          throw new UserFacingError(
            "forbidden",
            "only room moderators (power level 50) and bridge admins may change the relay",
          );
        if (args.action === "unset") {
          await s.portals.setRelay(portal, undefined);
          await inv.reply("This room has no relay now: people without a login are no longer bridged.");
          return;
        }
        if (args.action !== "set")
          throw new UserFacingError("bad_input", "say `relay set [login]` or `relay unset`");
        const mine = needLogins(s).live.liveOf(inv.user.userId);
        const login =
          typeof args.login === "string"
            ? mine.find((l) => l.id === args.login || l.name === args.login)
            : mine[0];
        if (!login)
          throw new UserFacingError(
            "not_found",
            typeof args.login === "string" ? `you have no login "${args.login}"` : "you have no login",
          );
        await s.portals.setRelay(portal, login.id);
        await inv.reply(`${login.name} now relays messages of people without a login in this room.`);
      },
    },
    {
      name: "bridge",
      help: "make this room the portal of a remote room",
      args: [{ name: "remote room", rest: true }],
      requires: "user",
      where: "not-portal",
      async run(args, inv, call) {
        const remoteId = String(args["remote room"]);
        if (!(await mayManageRoom(s, inv)))
          throw new UserFacingError(
            "forbidden",
            "only room moderators (power level 50) and bridge admins may bridge a room",
          );
        if (await s.portals.get(remoteId))
          throw new UserFacingError("conflict", `${remoteId} is bridged to another room already`);
        const spec = s.adapter.queryRoom ? await s.adapter.queryRoom(remoteId, call) : null;
        if (!spec)
          throw new UserFacingError("not_found", `the ${s.adapter.name} network has no room "${remoteId}"`);
        await s.portals.adopt({ remoteId, roomId: inv.roomId });
        await inv.reply(`This room is now bridged to ${remoteId}.`);
      },
    },
    {
      name: "unbridge",
      help: "stop bridging this room",
      requires: "user",
      where: "portal",
      async run(_args, inv) {
        const portal = inv.portal!;
        if (portal.login !== undefined)
          throw new UserFacingError("bad_state", "this is a direct chat; leave it to end it");
        if (!(await mayManageRoom(s, inv)))
          throw new UserFacingError(
            "forbidden",
            "only room moderators (power level 50) and bridge admins may unbridge a room",
          );
        await s.portals.unlink(portal);
        await inv.reply(`This room is no longer bridged to ${portal.remoteId}.`);
      },
    },
  ];
  if (s.checkDoublePuppet) {
    const check = s.checkDoublePuppet;
    commands.push(
      {
        name: "login-matrix",
        help: "give me a Matrix access token of yours, so what you send from other remote clients appears as you",
        args: [{ name: "token" }],
        requires: "user",
        async run(args, inv) {
          const token = String(args.token);
          await redactSecret(s, inv);
          try {
            await check(inv.user.userId, token);
          } catch (err) {
            const before = await s.users.getDoublePuppetToken(inv.user.userId);
            if (before === undefined || !(err instanceof UserFacingError)) throw err;
            throw new UserFacingError(err.code, `${err.message}; the token you gave before is still used`);
          }
          await s.users.setDoublePuppetToken(inv.user.userId, token);
          await inv.reply("Double puppeting is on: what you send from other clients appears as you.");
        },
      },
      {
        name: "logout-matrix",
        help: "forget the Matrix access token you gave",
        requires: "user",
        async run(_args, inv) {
          await s.users.setDoublePuppetToken(inv.user.userId, undefined);
          await inv.reply("Double puppeting with your token is off.");
        },
      },
    );
  }
  return commands;
}

/** Removes a message that carried a secret; says so when it cannot. */
export async function redactSecret(s: CommandServices, inv: Invocation): Promise<void> {
  try {
    await s.bot.redact(inv.roomId, inv.eventId, { reason: "it contained a secret" });
  } catch (err) {
    s.log.warn({ err, roomId: inv.roomId }, "could not redact a message carrying a secret");
    await inv.reply(
      "I could not remove your message from the room: please delete it yourself, it holds a secret.",
    );
  }
}
