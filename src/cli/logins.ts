import { parseArgs } from "node:util";
import { ValidationError } from "../common/validation-error.js";
import { HomeserverClient } from "../client/homeserver-client.js";
import { noticeContent } from "../commands/notice.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import { loadRegistration } from "../registration/load.js";
import { openStore } from "../store/open-store.js";
import { LeaseHeldError } from "../store/lease.js";
import { SecretBox } from "../users/secret-box.js";
import { type LoginSummary, UserStore } from "../users/user-store.js";
import { UsageError, type Command } from "./command.js";
import { openStoreForCli } from "./store-access.js";

/**
 * Tells each user whose logins were forgotten, in their management room, as the bot; best
 * effort (the homeserver may be down too): what could not be told is printed for the operator.
 */
async function tellUsers(config: BridgeConfig, users: UserStore, forgotten: LoginSummary[]): Promise<void> {
  const byUser = new Map<string, LoginSummary[]>();
  for (const login of forgotten) byUser.set(login.userId, [...(byUser.get(login.userId) ?? []), login]);
  let client: HomeserverClient | undefined;
  const memory = await openStore("memory://");
  try {
    client = new HomeserverClient({
      homeserverUrl: config.homeserver.url,
      domain: config.homeserver.domain,
      registration: await loadRegistration(config.appservice.registration),
      store: memory,
      retry: { maxAttempts: 2 },
      requestTimeoutMs: config.client.requestTimeoutMs,
    });
    for (const [userId, logins] of byUser) {
      const room = await users.managementRoomOf(userId);
      const names = logins.map((login) => `"${login.name}"`).join(", ");
      if (room === undefined) {
        console.log(`${userId} has no management room: tell them yourself that ${names} must log in again`);
        continue;
      }
      const text = `The bridge's operator removed your login${logins.length === 1 ? "" : "s"} ${names}: ${logins.some((login) => login.unreadable) ? "the stored credentials could no longer be read" : "on request"}. Send \`login\` to log in again.`;
      try {
        await client.botIntent.sendMessage(room, noticeContent(text));
        console.log(`told ${userId} in ${room}`);
      } catch (err) {
        console.log(`could not tell ${userId} in ${room} (${(err as Error).message}): tell them yourself`);
      }
    }
  } catch (err) {
    console.log(`could not tell the users (${(err as Error).message}): tell them yourself`);
  } finally {
    await memory.close();
  }
}

function describe(login: LoginSummary): string {
  const when = new Date(login.updatedAt).toISOString();
  const data = login.unreadable ? `cannot be opened: ${login.unreadable}` : login.sealed ? "sealed" : "plain";
  return `${login.id}  ${login.userId}  "${login.name}"\n  updated ${when}  data ${data}`;
}

const USAGE = `bridgekit logins list|forget [ID...] [--unreadable] [--json] [--config config.yaml]

  list             every stored login: its user, name, and whether its data can be opened
                   with the configured logins.encryptionKey (--unreadable: only those that
                   cannot; --json: as JSON). Never shows the data.
  forget ID...     delete these logins (their users will have to log in again)
  forget --unreadable
                   delete every login whose data cannot be opened (a lost or changed key)

Works on the store. forget needs the bridge stopped: it takes the store's writer lease and
refuses while a bridge holds it.`;

export const loginsCommand: Command = {
  summary: "list stored logins, or forget them (e.g. those a lost key made unreadable)",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: "string", default: "config.yaml" },
        unreadable: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const [action, ...ids] = positionals;
    if (action !== "list" && action !== "forget")
      throw new UsageError(action === undefined ? "say list or forget" : `unknown action "${action}"`);
    if (action === "list" && ids.length > 0) throw new UsageError("list takes no ids");
    if (action === "forget" && ids.length === 0 && !values.unreadable)
      throw new UsageError("forget needs login ids (see list) or --unreadable");
    if (action === "forget" && ids.length > 0 && values.unreadable)
      throw new UsageError("give ids or --unreadable, not both");

    let config;
    let access;
    try {
      config = await loadConfig(values.config);
      access = await openStoreForCli(config, action === "forget");
    } catch (err) {
      if (!(err instanceof ValidationError) && !(err instanceof LeaseHeldError)) throw err;
      console.error(err.message);
      return 1;
    }
    try {
      const key = config.logins.encryptionKey;
      const users = new UserStore(access.store, key === undefined ? undefined : SecretBox.fromKey(key));
      const all: LoginSummary[] = [];
      for await (const login of users.loginSummaries()) all.push(login);
      all.sort((a, b) => a.userId.localeCompare(b.userId) || a.createdAt - b.createdAt);
      const unreadable = all.filter((login) => login.unreadable !== undefined);

      if (action === "list") {
        const shown = values.unreadable ? unreadable : all;
        if (values.json) console.log(JSON.stringify(shown, null, 2));
        else {
          const what = values.unreadable ? "unreadable login" : "login";
          console.log(
            `${shown.length} ${what}${shown.length === 1 ? "" : "s"} in the store ${access.description}`,
          );
          for (const login of shown) console.log(describe(login));
          if (!values.unreadable && unreadable.length > 0)
            console.log(`${unreadable.length} cannot be opened with the configured key`);
        }
        return 0;
      }

      const byId = new Map(all.map((login) => [login.id, login]));
      const targets = values.unreadable ? unreadable.map((login) => login.id) : ids;
      const forgotten: LoginSummary[] = [];
      for (const id of targets) {
        const login = byId.get(id);
        const ok = login !== undefined && (await users.deleteLogin(id));
        if (ok) forgotten.push(login);
        console.log(ok ? `forgot ${id} (of ${login.userId})` : `no login ${id}`);
      }
      if (targets.length === 0) console.log("no login is unreadable: nothing to forget");
      if (forgotten.length > 0) await tellUsers(config, users, forgotten);
      return forgotten.length < targets.length ? 1 : 0;
    } finally {
      await access.close();
    }
  },
};
