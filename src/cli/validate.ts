import { parseArgs } from "node:util";
import type { RemoteNetworkAdapter } from "../adapter/adapter.js";
import { AdapterLoadError } from "../adapter/load-adapter.js";
import { formatProblems, ValidationError } from "../common/validation-error.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import {
  checkDoublePuppetRegistration,
  IdTemplate,
  loadRegistration,
  NamespaceMatcher,
  type Registration,
} from "../registration/index.js";
import { describeStoreUrl } from "../store/index.js";
import type { Command } from "./command.js";
import { adapterProtocols, configuredAdapter } from "./configured-adapter.js";

/** Remote ids tried against the namespaces: plain, upper case and punctuation, non-ASCII. */
const SAMPLE_IDS = ["alice", "Alice|away", "zoë ☃"];

export interface ConsistencyReport {
  problems: string[];
  warnings: string[];
}

/**
 * Whether the config's templates fit the registration: every sample ghost is in the users
 * namespace, every sample alias in the aliases namespace, the bot is no ghost, and the
 * registration's url points at the appservice port. Pure: no I/O.
 */
export function checkRegistrationMatchesConfig(
  config: BridgeConfig,
  registration: Registration,
  registrationPath: string,
): ConsistencyReport {
  const out: ConsistencyReport = { problems: [], warnings: [] };
  const domain = config.homeserver.domain;
  const matcher = new NamespaceMatcher(registration, domain);
  const regexes = (list: Array<{ regex: string }>) =>
    list.length === 0 ? "none" : list.map((n) => n.regex).join(", ");

  const ghosts = new IdTemplate(config.bridge.ghosts, domain);
  for (const sample of SAMPLE_IDS) {
    const userId = ghosts.userId(sample);
    if (!matcher.isUserInNamespace(userId)) {
      out.problems.push(
        `bridge.ghosts "${config.bridge.ghosts}" makes ${userId}, which is outside the users namespace of ` +
          `${registrationPath} (${regexes(registration.namespaces.users)}): regenerate the registration or fix the template`,
      );
      break;
    }
    if (!matcher.isUserExclusive(userId)) {
      out.warnings.push(
        `ghost ${userId} is in a non-exclusive users namespace: Matrix users could take ghost ids`,
      );
      break;
    }
  }
  if (config.bridge.portals !== undefined) {
    const portals = new IdTemplate(config.bridge.portals, domain);
    for (const sample of SAMPLE_IDS) {
      const alias = portals.alias(sample);
      if (!matcher.isAliasInNamespace(alias)) {
        out.problems.push(
          `bridge.portals "${config.bridge.portals}" makes ${alias}, which is outside the aliases namespace of ` +
            `${registrationPath} (${regexes(registration.namespaces.aliases)}): regenerate the registration or fix the template`,
        );
        break;
      }
    }
  }
  const botAsGhost = ghosts.parseUserId(matcher.botUserId);
  if (botAsGhost !== null) {
    out.problems.push(
      `the bot ${matcher.botUserId} (sender_localpart in ${registrationPath}) is also the ghost of remote user ` +
        `"${botAsGhost}" under bridge.ghosts "${config.bridge.ghosts}": choose a sender_localpart outside the template`,
    );
  }
  if (typeof registration.url === "string" && config.appservice.port !== 0) {
    const url = new URL(registration.url);
    const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
    if (port !== config.appservice.port) {
      out.warnings.push(
        `the registration's url ${registration.url} uses port ${port} but appservice.port is ${config.appservice.port} ` +
          `(fine behind a reverse proxy; otherwise the homeserver cannot reach the bridge)`,
      );
    }
  } else if (registration.url === null) {
    out.warnings.push("the registration's url is null: the homeserver will push nothing to the bridge");
  }
  if (config.encryption.allow)
    out.problems.push(...checkEncryptionRegistration(registration, registrationPath));
  return out;
}

/** The homeserver settings end-to-bridge encryption needs, which validate cannot see. */
export const ENCRYPTION_HOMESERVER_NOTE =
  "encryption.allow needs, in the homeserver's homeserver.yaml (Synapse 1.141+): experimental_features: " +
  "{msc2409_to_device_messages_enabled: true, msc3202_transaction_extensions: true} " +
  "(and msc4190_enabled: true before Synapse 1.141); bridgekit start fails at the bot's device without MSC4190";

/** What the registration lacks for end-to-bridge encryption: one problem per missing opt-in. Pure. */
export function checkEncryptionRegistration(registration: Registration, registrationPath: string): string[] {
  const problems: string[] = [];
  const missing = (["org.matrix.msc3202", "io.element.msc4190"] as const).filter(
    (k) => registration[k] !== true,
  );
  const fix = `(bridgekit generate-registration --force with encryption.allow adds them; then restart the homeserver)`;
  for (const key of missing) {
    const what =
      key === "org.matrix.msc3202"
        ? "device lists and one-time-key counts in transactions"
        : "the bot's device without /login";
    problems.push(`${registrationPath}: ${key}: must be true with encryption.allow (${what}) ${fix}`);
  }
  if (registration.receive_ephemeral !== true && registration["de.sorunome.msc2409.push_ephemeral"] !== true)
    problems.push(
      `${registrationPath}: receive_ephemeral (or de.sorunome.msc2409.push_ephemeral): must be true with encryption.allow (to-device messages) ${fix}`,
    );
  return problems;
}

/**
 * Warnings about what the adapter handles but the registration will not deliver: typing or
 * receipts without ephemeral data asked for, third-party protocols not listed. Pure.
 */
export function checkRegistrationMatchesAdapter(
  adapter: RemoteNetworkAdapter,
  registration: Registration,
  registrationPath: string,
): string[] {
  const warnings: string[] = [];
  const ephemeral =
    registration.receive_ephemeral === true || registration["de.sorunome.msc2409.push_ephemeral"] === true;
  const handles = (["onTyping", "onReceipt"] as const).filter((m) => typeof adapter[m] === "function");
  if (handles.length > 0 && !ephemeral) {
    warnings.push(
      `the adapter handles ${handles.join(" and ")} but ${registrationPath} sets neither receive_ephemeral ` +
        `nor de.sorunome.msc2409.push_ephemeral: the homeserver will send no typing notices or receipts ` +
        `(set both to true and restart the homeserver)`,
    );
  }
  const listed = new Set(registration.protocols ?? []);
  const missing = adapterProtocols(adapter).filter((p) => !listed.has(p));
  if (missing.length > 0) {
    warnings.push(
      `the adapter has third-party protocol${missing.length === 1 ? "" : "s"} ${missing.join(", ")} not listed ` +
        `under protocols in ${registrationPath}: the homeserver will not ask the bridge about ` +
        `${missing.length === 1 ? "it" : "them"} (add ${missing.length === 1 ? "it" : "them"} and restart the homeserver)`,
    );
  }
  return warnings;
}

/**
 * Loads a registration for validate: the registration, or a problem line naming the file,
 * each bad key and, for a missing file, the command that makes one.
 */
async function loadForValidate(
  path: string,
  makeOne: string,
): Promise<{ registration: Registration } | { problem: string }> {
  try {
    return { registration: await loadRegistration(path) };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const hint =
      err.problems.length === 1 && err.problems[0]!.message === "file not found"
        ? ` (make one: ${makeOne})`
        : "";
    return {
      problem: formatProblems(err.source, err.problems).split("\n").slice(1).join("\n").trim() + hint,
    };
  }
}

/**
 * The double-puppet registration the config names: it loads, and is fit for double puppeting
 * (url null, a non-exclusive namespace covering the domain, id and tokens its own).
 * Returns the problems, each naming the file and key, and a summary line when there are none.
 */
async function checkDoublePuppetFile(
  config: BridgeConfig,
  path: string,
  main: { registration: Registration; path: string } | undefined,
  configPath: string,
): Promise<{ problems: string[]; summary?: string }> {
  const loaded = await loadForValidate(
    path,
    `bridgekit generate-registration --double-puppet --config ${configPath}`,
  );
  if ("problem" in loaded) return { problems: [`doublePuppet.registration: ${loaded.problem}`] };
  const { registration } = loaded;
  const problems = checkDoublePuppetRegistration(registration, {
    domain: config.homeserver.domain,
    ...(main === undefined ? {} : { main: main.registration, mainSource: main.path }),
  }).map((p) => `${path}: ${p.path}: ${p.message}`);
  if (problems.length > 0) return { problems };
  return {
    problems,
    summary: `double puppeting ${path}: id ${registration.id}, users ${registration.namespaces.users.map((n) => n.regex).join(", ")}`,
  };
}

export const validateCommand: Command = {
  summary: "check the config, the registration, and that the adapter loads",
  usage: `bridgekit validate [--config config.yaml]

  --config    the bridge config (default: config.yaml)

Checks the config file (and BRIDGEKIT_* overrides); that the registration file exists, is
valid and matches the config (ghost and portal ids fall inside its namespaces); that the
double-puppet registration, when doublePuppet.registration names one, loads, has url null,
a non-exclusive users namespace covering the domain, and an id and tokens of its own; that the
store URL is well-formed (it is not opened); and that the adapter module loads and its
factory accepts adapter.config (the adapter is not started). Warns when the adapter
handles typing or receipts but the registration asks for no ephemeral data, or has
third-party protocols the registration does not list. With encryption.allow, the
registration must carry org.matrix.msc3202, io.element.msc4190 and an ephemeral opt-in, and
the homeserver features encryption needs are listed. Prints every problem and exits 1,
or prints a summary and exits 0.`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: "string", default: "config.yaml" } } });
    const configPath = values.config;
    let config: BridgeConfig;
    try {
      config = await loadConfig(configPath);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      console.error(err.message);
      return 1;
    }
    const problems: string[] = [];
    const warnings = [...config.warnings];

    const registrationPath = config.appservice.registration;
    const loaded = await loadForValidate(
      registrationPath,
      `bridgekit generate-registration --config ${configPath}`,
    );
    const registration = "registration" in loaded ? loaded.registration : undefined;
    if (registration !== undefined) {
      const report = checkRegistrationMatchesConfig(config, registration, registrationPath);
      problems.push(...report.problems);
      warnings.push(...report.warnings);
    } else if ("problem" in loaded) problems.push(loaded.problem);

    let doublePuppetLine: string | undefined;
    if (config.doublePuppet.registration !== undefined) {
      const report = await checkDoublePuppetFile(
        config,
        config.doublePuppet.registration,
        registration === undefined ? undefined : { registration, path: registrationPath },
        configPath,
      );
      problems.push(...report.problems);
      doublePuppetLine = report.summary;
    }

    let adapterLine = "";
    try {
      const { adapter, file } = await configuredAdapter(config);
      adapterLine = `adapter "${adapter.name}" from ${file} (loaded, not started)`;
      if (registration !== undefined) {
        warnings.push(...checkRegistrationMatchesAdapter(adapter, registration, registrationPath));
      }
    } catch (err) {
      if (!(err instanceof AdapterLoadError)) throw err;
      problems.push(`adapter.module: ${err.message}`);
    }

    if (config.encryption.allow) warnings.push(ENCRYPTION_HOMESERVER_NOTE);
    for (const warning of warnings) console.error(`warning: ${warning}`);
    if (problems.length > 0) {
      console.error(
        `${configPath}: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n` +
          problems.map((p) => `  ${p}`).join("\n"),
      );
      return 1;
    }
    console.log(
      [
        `OK ${configPath}`,
        `  homeserver ${config.homeserver.url} (${config.homeserver.domain})`,
        `  registration ${registrationPath}: id ${registration!.id}, bot @${registration!.sender_localpart}:${config.homeserver.domain}`,
        `  ghosts @${config.bridge.ghosts}:${config.homeserver.domain}` +
          (config.bridge.portals === undefined
            ? ""
            : `, portals #${config.bridge.portals}:${config.homeserver.domain}`),
        ...(doublePuppetLine === undefined ? [] : [`  ${doublePuppetLine}`]),
        `  listening on ${config.appservice.host}:${config.appservice.port}`,
        `  store ${describeStoreUrl(config.store)} (not opened)`,
        `  ${adapterLine}`,
      ].join("\n"),
    );
    return 0;
  },
};
