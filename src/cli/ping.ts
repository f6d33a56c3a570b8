import { parseArgs } from "node:util";
import { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import { ValidationError } from "../common/validation-error.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import { loadRegistration } from "../registration/load.js";
import type { Registration } from "../registration/types.js";
import { openStore } from "../store/open-store.js";
import type { Command } from "./command.js";

/** The outcome of one check: `warn` cannot be checked here but is not known to be wrong. */
export interface PingCheck {
  name: string;
  status: "ok" | "fail" | "warn" | "skipped";
  /** One line: what was found, and for a failure what to do about it. */
  detail: string;
}

/**
 * Checks a bridge's connection with its homeserver, in order: the homeserver answers
 * `/versions`; it accepts the registration's as_token (`whoami` as the bot); and it can reach
 * the bridge (the homeserver pings the registration's url). A check after a failed one is
 * skipped. Each request is made once (no retries), so a failure is reported at once. Opens
 * no store and starts no bridge; the bridge itself must be running for the last check.
 */
export async function pingChecks(
  config: BridgeConfig,
  registration: Registration,
  registrationPath: string,
): Promise<PingCheck[]> {
  const store = await openStore("memory://");
  const client = new HomeserverClient({
    homeserverUrl: config.homeserver.url,
    domain: config.homeserver.domain,
    registration,
    store,
    retry: { maxAttempts: 1 },
    requestTimeoutMs: config.client.requestTimeoutMs,
  });
  const checks: PingCheck[] = [];
  const skip = (name: string) => checks.push({ name, status: "skipped", detail: "after the failure above" });
  try {
    try {
      const { versions } = await client.versions();
      checks.push({
        name: "homeserver",
        status: "ok",
        detail: `${config.homeserver.url} answers (Matrix ${versions.slice(-2).join(", ")})`,
      });
    } catch (err) {
      checks.push({
        name: "homeserver",
        status: "fail",
        detail: `${config.homeserver.url} does not answer /_matrix/client/versions: ${message(err)}; check homeserver.url and that the homeserver is running`,
      });
      skip("as_token");
      skip("homeserver -> bridge");
      return checks;
    }

    try {
      const { user_id } = await client.whoami();
      if (user_id !== client.botUserId) {
        checks.push({
          name: "as_token",
          status: "fail",
          detail: `the homeserver says the as_token belongs to ${user_id}, not the bot ${client.botUserId}: check sender_localpart in ${registrationPath} and homeserver.domain`,
        });
        skip("homeserver -> bridge");
        return checks;
      }
      checks.push({ name: "as_token", status: "ok", detail: `accepted: the bot is ${user_id}` });
    } catch (err) {
      const unknownToken =
        err instanceof MatrixError && (err.status === 401 || err.errcode === "M_UNKNOWN_TOKEN");
      checks.push({
        name: "as_token",
        status: "fail",
        detail: unknownToken
          ? `the homeserver does not know the as_token of ${registrationPath}: list the file under app_service_config_files (Synapse) and restart the homeserver; after regenerating it, give the homeserver the new file (${message(err)})`
          : `whoami as the bot failed: ${message(err)}`,
      });
      skip("homeserver -> bridge");
      return checks;
    }

    checks.push(await pingBack(client, registration, registrationPath));
    return checks;
  } finally {
    await client.close();
    await store.close();
  }
}

async function pingBack(
  client: HomeserverClient,
  registration: Registration,
  registrationPath: string,
): Promise<PingCheck> {
  const name = "homeserver -> bridge";
  const url = registration.url ?? "(null)";
  try {
    const { duration_ms } = await client.ping(`bridgekit-ping-${Date.now()}`);
    return { name, status: "ok", detail: `the homeserver reached the bridge at ${url} in ${duration_ms} ms` };
  } catch (err) {
    if (!(err instanceof MatrixError)) {
      return {
        name,
        status: "fail",
        detail: `asking the homeserver to ping the bridge failed: ${message(err)}`,
      };
    }
    switch (err.errcode) {
      case "M_CONNECTION_FAILED":
      case "M_CONNECTION_TIMEOUT":
        return {
          name,
          status: "fail",
          detail: `the homeserver cannot connect to the bridge at ${url} (${err.errcode}: ${err.error}): the bridge is not running (bridgekit start), or the url in ${registrationPath} is wrong (it must be the bridge's appservice.host:port as the homeserver sees it)`,
        };
      case "M_BAD_STATUS":
        return {
          name,
          status: "fail",
          detail: `something answered at ${url} with an error (${err.error}): it is not this bridge, or the bridge was started with a different registration (hs_token)`,
        };
      case "M_URL_NOT_SET":
        return {
          name,
          status: "fail",
          detail: `the registration's url is null, so the homeserver sends the bridge nothing: set url in ${registrationPath} and restart the homeserver`,
        };
      case "M_UNRECOGNIZED":
        return {
          name,
          status: "warn",
          detail:
            "the homeserver does not support the appservice ping (Matrix v1.7); cannot check it reaches the bridge",
        };
      default:
        if (err.status === 404) {
          return {
            name,
            status: "warn",
            detail:
              "the homeserver does not support the appservice ping (Matrix v1.7); cannot check it reaches the bridge",
          };
        }
        return {
          name,
          status: "fail",
          detail: `${err.errcode}: ${err.error} (is the homeserver's copy of ${registrationPath} the same as the bridge's, with id "${registration.id}"?)`,
        };
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const LABEL: Record<PingCheck["status"], string> = {
  ok: "ok  ",
  fail: "FAIL",
  warn: "warn",
  skipped: "--  ",
};

export const pingCommand: Command = {
  summary: "check the homeserver is reachable, accepts the bridge and can reach it",
  usage: `bridgekit ping [--config config.yaml]

  --config    the bridge config (default: config.yaml)

Checks, one line each: the homeserver answers (homeserver.url); it accepts the
registration's as_token (whoami as the bot); and it can reach the running bridge (the
homeserver pings the registration's url). Exits 0 when all pass, 1 otherwise. Run it
while the bridge is running (bridgekit start).`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: "string", default: "config.yaml" } } });
    let config: BridgeConfig;
    let registration: Registration;
    try {
      config = await loadConfig(values.config);
      registration = await loadRegistration(config.appservice.registration);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      console.error(err.message);
      return 1;
    }
    const checks = await pingChecks(config, registration, config.appservice.registration);
    for (const c of checks) {
      console.log(`${LABEL[c.status]}  ${c.name}: ${c.detail}`);
    }
    return checks.some((c) => c.status === "fail") ? 1 : 0;
  },
};
