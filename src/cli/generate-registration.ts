import { access } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AdapterLoadError } from "../adapter/load-adapter.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import { ValidationError } from "../common/validation-error.js";
import {
  generateDoublePuppetRegistration,
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../registration/index.js";
import { UsageError, type Command } from "./command.js";
import { adapterProtocols, configuredAdapter } from "./configured-adapter.js";

/** A registration id from a ghost template's literal prefix: `irc_{id}` -> `irc`; undefined if none. */
export function idFromTemplate(template: string): string | undefined {
  const prefix = template.split("{id}")[0] ?? "";
  const id = prefix.replace(/^[_.=\-/]+|[_.=\-/]+$/g, "");
  return /^[a-z0-9][a-z0-9._-]*$/.test(id) ? id : undefined;
}

/** `http://{appservice.host}:{appservice.port}`, reachable from the homeserver's side of loopback. */
export function defaultUrl(config: BridgeConfig): string {
  if (config.appservice.port === 0) {
    throw new UsageError("appservice.port is 0 (any free port), so there is no URL to register: pass --url");
  }
  let host = config.appservice.host;
  if (host === "0.0.0.0") host = "127.0.0.1";
  else if (host === "::") host = "::1";
  if (host.includes(":")) host = `[${host}]`;
  return `http://${host}:${config.appservice.port}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Refuses (prints why, returns false) to overwrite an existing file without --force. */
async function mayWrite(output: string, force: boolean): Promise<boolean> {
  if (force || !(await exists(output))) return true;
  console.error(
    `generate-registration: ${output} exists; not overwriting it, since new tokens would lock out a homeserver ` +
      `that uses it. Pass --force to rotate the tokens (then give the homeserver the new file and restart it).`,
  );
  return false;
}

/** Builds a registration, turning a bad flag value (id, url, sender, prefix, domain) into a usage error. */
function fromFlags(build: () => Registration): Registration {
  try {
    return build();
  } catch (err) {
    if (err instanceof TypeError || err instanceof ValidationError) throw new UsageError(err.message);
    throw err;
  }
}

interface DoublePuppetFlags {
  config?: string | undefined;
  id?: string | undefined;
  domain?: string | undefined;
  output?: string | undefined;
  force: boolean;
}

/** `--double-puppet`: the second registration whose as_token may act as the real users. */
async function writeDoublePuppetRegistration(flags: DoublePuppetFlags): Promise<number> {
  let domain: string;
  let output: string;
  let configured: string | undefined;
  if (flags.config !== undefined) {
    if (flags.domain !== undefined) {
      throw new UsageError("--domain cannot be used with --config (the config's homeserver.domain decides)");
    }
    const config = await loadConfig(flags.config);
    for (const warning of config.warnings) console.error(`warning: ${warning}`);
    domain = config.homeserver.domain;
    configured = config.doublePuppet.registration;
    output = flags.output ?? configured ?? join(dirname(config.appservice.registration), "doublepuppet.yaml");
  } else {
    if (flags.domain === undefined) throw new UsageError("missing --domain (or give --config)");
    domain = flags.domain;
    output = flags.output ?? "doublepuppet.yaml";
  }
  if (!(await mayWrite(output, flags.force))) return 1;
  const registration = fromFlags(() =>
    generateDoublePuppetRegistration({ domain, ...(flags.id === undefined ? {} : { id: flags.id }) }),
  );
  await saveRegistration(output, registration);
  const path = resolve(output);
  console.log(
    [
      `wrote ${output} (mode 0600): a double-puppet registration`,
      `  id ${registration.id}, url null (the homeserver pushes nothing to it)`,
      `  users ${registration.namespaces.users.map((n) => n.regex).join(", ")} (not exclusive: the users keep their ids)`,
      "Add it to the homeserver's app_service_config_files and restart the homeserver.",
      configured === path
        ? "The config's doublePuppet.registration already names it."
        : `Then set doublePuppet.registration: ${path} in the bridge config.`,
    ].join("\n"),
  );
  return 0;
}

export const generateRegistrationCommand: Command = {
  summary: "write a new registration YAML with fresh tokens",
  usage: `bridgekit generate-registration --config config.yaml [--url URL] [--output FILE] [--id ID] [--sender LOCALPART] [--force]
       bridgekit generate-registration --id ID --url URL --domain DOMAIN [--sender LOCALPART] [--prefix PREFIX] [--output FILE] [--force]

  --config    the bridge config: namespaces come from bridge.ghosts and bridge.portals, the
              domain from homeserver.domain
  --url       where the homeserver reaches the bridge (with --config, default:
              http://{appservice.host}:{appservice.port})
  --output    the file to write, mode 0600 (default: the config's appservice.registration,
              or registration.yaml without --config)
  --id        the bridge's unique id on the homeserver (with --config, default: the ghost
              template's prefix, e.g. irc for irc_{id})
  --sender    the bridge bot's localpart (default: {id}bot)
  --domain    the homeserver's server name (without --config)
  --prefix    ghost and portal prefix (without --config; default: {id}_), giving @{prefix}{remote id}
  --force     overwrite an existing file. This rotates both tokens: the homeserver must be
              given the new file and restarted, or it can no longer talk to the bridge.

       bridgekit generate-registration --double-puppet (--config config.yaml | --domain DOMAIN) [--id ID] [--output FILE] [--force]

  --double-puppet  write the second registration used for double puppeting instead: url null,
              a random sender, fresh tokens, and a non-exclusive users namespace covering
              every user of the domain, so that its as_token may act as them (default
              output: the config's doublePuppet.registration, else doublepuppet.yaml beside
              the registration; default id: doublepuppet). One such registration can serve
              every bridge on the homeserver.

The registration asks for typing notices, receipts and presence (receive_ephemeral, and
de.sorunome.msc2409.push_ephemeral for older homeservers). With --config, the adapter is
created (not started) and its third-party protocols (thirdParty.protocols) are listed
under protocols.`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: "string" },
        id: { type: "string" },
        url: { type: "string" },
        domain: { type: "string" },
        sender: { type: "string" },
        prefix: { type: "string" },
        output: { type: "string" },
        force: { type: "boolean", default: false },
        "double-puppet": { type: "boolean", default: false },
      },
    });
    if (values["double-puppet"]) {
      const clash = (["url", "sender", "prefix"] as const).filter((k) => values[k] !== undefined);
      if (clash.length > 0) {
        throw new UsageError(
          `${clash.map((k) => `--${k}`).join(" and ")} cannot be used with --double-puppet (its url is null, its sender random, its namespace every user)`,
        );
      }
      return writeDoublePuppetRegistration(values);
    }
    let id: string;
    let url: string;
    let domain: string;
    let ghosts: string;
    let portals: string | undefined;
    let output: string;
    let protocols: string[] = [];
    let encryption = false;
    if (values.config !== undefined) {
      const clash = (["domain", "prefix"] as const).filter((k) => values[k] !== undefined);
      if (clash.length > 0) {
        throw new UsageError(
          `${clash.map((k) => `--${k}`).join(" and ")} cannot be used with --config (the config's homeserver.domain and bridge templates decide)`,
        );
      }
      const config = await loadConfig(values.config);
      for (const warning of config.warnings) console.error(`warning: ${warning}`);
      const derived = values.id ?? idFromTemplate(config.bridge.ghosts);
      if (derived === undefined) {
        throw new UsageError(`cannot derive an id from bridge.ghosts "${config.bridge.ghosts}": pass --id`);
      }
      id = derived;
      url = values.url ?? defaultUrl(config);
      domain = config.homeserver.domain;
      ghosts = config.bridge.ghosts;
      portals = config.bridge.portals;
      encryption = config.encryption.allow;
      output = values.output ?? config.appservice.registration;
      try {
        protocols = adapterProtocols((await configuredAdapter(config)).adapter);
      } catch (err) {
        if (!(err instanceof AdapterLoadError)) throw err;
        console.error(
          `warning: adapter.module: ${err.message}; no third-party protocols listed (bridgekit validate checks them)`,
        );
      }
    } else {
      const missing = (["id", "url", "domain"] as const).filter((k) => values[k] === undefined);
      if (missing.length > 0) {
        throw new UsageError(`missing ${missing.map((k) => `--${k}`).join(", ")} (or give --config)`);
      }
      id = values.id!;
      url = values.url!;
      domain = values.domain!;
      ghosts = portals = `${values.prefix ?? `${id}_`}{id}`;
      output = values.output ?? "registration.yaml";
    }
    if (!(await mayWrite(output, values.force))) return 1;
    const registration = fromFlags(() =>
      generateRegistration({
        id,
        url,
        domain,
        senderLocalpart: values.sender ?? `${id}bot`,
        ghosts,
        ...(portals === undefined ? {} : { portals }),
        protocols,
        receiveEphemeral: true,
        encryption,
      }),
    );
    await saveRegistration(output, registration);
    console.log(
      [
        `wrote ${output} (mode 0600)`,
        `  id ${registration.id}, bot @${registration.sender_localpart}:${domain}, url ${registration.url ?? "none"}`,
        `  ghosts ${registration.namespaces.users.map((n) => n.regex).join(", ")}`,
        ...(registration.namespaces.aliases.length > 0
          ? [`  aliases ${registration.namespaces.aliases.map((n) => n.regex).join(", ")}`]
          : []),
        ...(protocols.length > 0 ? [`  protocols ${protocols.join(", ")}`] : []),
        ...(encryption
          ? [
              "  encryption: org.matrix.msc3202, io.element.msc4190 and the ephemeral opt-ins are on; the homeserver needs",
              "  experimental_features: {msc2409_to_device_messages_enabled: true, msc3202_transaction_extensions: true}",
            ]
          : []),
        "Add it to the homeserver's app_service_config_files and restart the homeserver.",
      ].join("\n"),
    );
    return 0;
  },
};
