import { parseArgs } from "node:util";
import { DEAD_LETTERS_PATH } from "../appservice/dead-letter-routes.js";
import { ValidationError } from "../common/validation-error.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import { DeadLetters, type DeadLetter } from "../inbox/dead-letters.js";
import { loadRegistration } from "../registration/load.js";
import { LeaseHeldError } from "../store/lease.js";
import { UsageError, type Command } from "./command.js";
import { openStoreForCli } from "./store-access.js";

/**
 * Where the dead letters are reached: the running bridge's HTTP API (with the registration's
 * hs_token), or, when nothing listens at the configured address, the store itself.
 */
interface DeadLetterAccess {
  /** Names where it worked, for the output. */
  readonly where: string;
  list(): Promise<DeadLetter[]>;
  /** True if there was one with that id. */
  retry(id: string): Promise<boolean>;
  drop(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The running bridge, through `/_bridgekit/v1/dead-letters`. */
function viaBridge(base: string, hsToken: string): DeadLetterAccess {
  const call = async (method: string, path: string): Promise<Response> => {
    const res = await fetch(`${base}${DEAD_LETTERS_PATH}${path}`, {
      method,
      headers: { Authorization: `Bearer ${hsToken}` },
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200 && res.status !== 404)
      throw new Error(
        `the bridge at ${base} answered ${res.status} to ${method} ${DEAD_LETTERS_PATH}${path}`,
      );
    return res;
  };
  const found = async (method: string, path: string) => (await call(method, path)).status === 200;
  return {
    where: `the running bridge at ${base}`,
    list: async () => ((await (await call("GET", "")).json()) as { dead_letters: DeadLetter[] }).dead_letters,
    retry: (id) => found("POST", `/${encodeURIComponent(id)}/retry`),
    drop: (id) => found("DELETE", `/${encodeURIComponent(id)}`),
    close: () => Promise.resolve(),
  };
}

/**
 * The store, while the bridge is stopped: a retry is done at the bridge's next start. To
 * change anything it takes the store's writer lease, so a bridge running elsewhere on the
 * same store (another host or port) is never raced: then it refuses, naming the store.
 */
async function viaStore(config: BridgeConfig, writes: boolean): Promise<DeadLetterAccess> {
  const access = await openStoreForCli(config, writes);
  const letters = new DeadLetters(access.store, { max: config.inbox.maxDeadLetters });
  return {
    where: `the store ${access.description} (the bridge is not running; retries happen at its next start)`,
    list: () => letters.list(),
    retry: (id) => letters.requestRetry(id),
    drop: (id) => letters.remove(id),
    close: () => access.close(),
  };
}

async function open(config: BridgeConfig, writes: boolean): Promise<DeadLetterAccess> {
  const registration = await loadRegistration(config.appservice.registration);
  const host = ["0.0.0.0", "::", ""].includes(config.appservice.host) ? "127.0.0.1" : config.appservice.host;
  const base = `http://${host.includes(":") ? `[${host}]` : host}:${config.appservice.port}`;
  try {
    await fetch(`${base}/health`, { signal: AbortSignal.timeout(5_000) });
  } catch {
    return viaStore(config, writes); // nothing listens: the bridge is stopped
  }
  return viaBridge(base, registration.hs_token);
}

function describe(letter: DeadLetter): string {
  const item = letter.item;
  const what =
    item.kind === "event"
      ? `${item.event.type} from ${item.event.sender} in ${item.event.room_id}`
      : item.kind;
  const when = new Date(letter.deadAt).toISOString();
  const retry = letter.retryRequested ? " (retry at next start)" : "";
  return `${letter.id}  ${what}\n  ${when}  ${letter.reason} after ${letter.attempts} ${letter.attempts === 1 ? "try" : "tries"}: ${letter.error.name}: ${letter.error.message}${retry}`;
}

const USAGE = `bridgekit dead-letters list|retry|drop [ID...] [--all] [--json] [--config config.yaml]

  list             every dead letter: the event, why, how many tries (--json: as JSON)
  retry ID...      send them through their room again (--all: every one)
  drop ID...       forget them (--all: every one)

Talks to the running bridge at appservice.host:port; when nothing listens there, works on
the store directly (a retry then happens at the bridge's next start).`;

export const deadLettersCommand: Command = {
  summary: "list, retry or drop events the bridge gave up on",
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: "string", default: "config.yaml" },
        all: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const [action, ...ids] = positionals;
    if (action !== "list" && action !== "retry" && action !== "drop")
      throw new UsageError(action === undefined ? "say list, retry or drop" : `unknown action "${action}"`);
    if (action === "list" && (ids.length > 0 || values.all)) throw new UsageError("list takes no ids");
    if (action !== "list" && ids.length === 0 && !values.all)
      throw new UsageError(`${action} needs dead letter ids (see list) or --all`);
    if (action !== "list" && ids.length > 0 && values.all)
      throw new UsageError("give ids or --all, not both");

    let access: DeadLetterAccess;
    try {
      access = await open(await loadConfig(values.config), action !== "list");
    } catch (err) {
      if (!(err instanceof ValidationError) && !(err instanceof LeaseHeldError)) throw err;
      console.error(err.message);
      return 1;
    }
    try {
      if (action === "list") {
        const letters = await access.list();
        if (values.json) console.log(JSON.stringify(letters, null, 2));
        else {
          console.log(`${letters.length} dead letter${letters.length === 1 ? "" : "s"} in ${access.where}`);
          for (const letter of letters) console.log(describe(letter));
        }
        return 0;
      }
      const targets = values.all ? (await access.list()).map((l) => l.id) : ids;
      let missing = 0;
      for (const id of targets) {
        const ok = action === "retry" ? await access.retry(id) : await access.drop(id);
        if (!ok) missing++;
        console.log(ok ? `${action === "retry" ? "retrying" : "dropped"} ${id}` : `no dead letter ${id}`);
      }
      console.log(`(${access.where})`);
      return missing > 0 ? 1 : 0;
    } finally {
      await access.close();
    }
  },
};
