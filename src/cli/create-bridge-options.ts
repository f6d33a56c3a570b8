/**
 * create-bridge's answers: the flags, their checks and their defaults. Pure: no I/O, so the
 * prompts, the flags and the tests share one definition of what a valid answer is.
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { httpUrl, serverName } from "../config/schema.js";
import { IdTemplate } from "../registration/localpart.js";
import { UsageError } from "./command.js";

/** The values a template is rendered with, as the user chose them. */
export interface ProjectAnswers {
  /** The npm package name of the new project, e.g. "matrix-foo-bridge". */
  name: string;
  /** The network id: adapter name, registration id, URI scheme, e.g. "foo". */
  network: string;
  /** Ghost and portal localpart prefix, e.g. "foo_" (ghosts @foo_alice, portals #foo_lobby). */
  prefix: string;
  /** The homeserver's client-server API URL. */
  homeserverUrl: string;
  /** The homeserver's server name. */
  domain: string;
}

export type AnswerKey = keyof ProjectAnswers;

/** The questions, in the order they are asked; each default may depend on earlier answers. */
export const QUESTIONS: ReadonlyArray<{
  key: AnswerKey;
  flag: string;
  question: string;
  default: (dir: string, earlier: Partial<ProjectAnswers>) => string;
}> = [
  { key: "name", flag: "--name", question: "Package name", default: (dir) => defaultName(dir) },
  {
    key: "network",
    flag: "--network",
    question: "Network id (adapter name, registration id)",
    default: (_dir, a) => defaultNetwork(a.name ?? ""),
  },
  {
    key: "prefix",
    flag: "--prefix",
    question: "Ghost and portal prefix",
    default: (_dir, a) => `${a.network ?? "example"}_`,
  },
  {
    key: "homeserverUrl",
    flag: "--homeserver-url",
    question: "Homeserver URL",
    default: () => "http://127.0.0.1:8008",
  },
  {
    key: "domain",
    flag: "--domain",
    question: "Homeserver domain (server name)",
    default: () => "localhost",
  },
];

const NPM_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
const NETWORK = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
/** Characters a template value must never contain: they would break JSON, YAML or TS strings. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it rejects
const UNSAFE = /["'`\\\s{}]|[\u0000-\u001f\u007f]/;
/** The formats need no other config key. */
const NO_DOC = { get: () => undefined };

/**
 * Checks one answer; returns what is wrong with it (to show after the flag or question), or
 * null if it is fine. `earlier` holds the answers checked before it (for prefix vs network).
 */
export function checkAnswer(
  key: AnswerKey,
  value: string,
  earlier: Partial<ProjectAnswers> = {},
): string | null {
  switch (key) {
    case "name":
      if (value.length > 214 || !NPM_NAME.test(value)) {
        return "must be an npm package name: lower case letters, digits, - . _ ~ (optionally @scope/name)";
      }
      return null;
    case "network":
      return NETWORK.test(value)
        ? null
        : "must be 1-32 lower case letters, digits and -, starting with a letter (it becomes a URI scheme and the registration id)";
    case "prefix": {
      if (!/^[a-z0-9._=/-]{1,64}$/.test(value)) {
        return "must be 1-64 characters of a-z 0-9 . _ = - / (a Matrix localpart prefix)";
      }
      try {
        new IdTemplate(`${value}{id}`, "example.org");
      } catch (err) {
        return (err as Error).message;
      }
      const bot = `${earlier.network ?? ""}bot`;
      if (earlier.network !== undefined && bot.startsWith(value)) {
        return `would make the bridge bot @${bot} a ghost too: end it with _ (e.g. ${earlier.network}_)`;
      }
      return null;
    }
    case "homeserverUrl":
      return UNSAFE.test(value)
        ? "must be an http(s) URL without quotes or spaces"
        : httpUrl.check(value, NO_DOC);
    case "domain":
      return serverName.check(value, NO_DOC);
  }
}

/** Checks a `--framework` dependency spec. */
export function checkFrameworkSpec(value: string): string | null {
  return value === "" || UNSAFE.test(value.replace(/ /g, "")) || value.trim() !== value
    ? "must be an npm dependency spec such as ^0.1.0 or file:../bridgekit.tgz, without quotes"
    : null;
}

/** The folder name made into an npm package name ("My Bridge" -> "my-bridge"). */
export function defaultName(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-._~]+/g, "-")
    .replace(/^[-._~]+|[-._]+$/g, "");
  return name === "" || !NPM_NAME.test(name) ? "my-bridge" : name.slice(0, 214);
}

/** A network id from the package name: "matrix-foo-bridge" -> "foo"; "example" if none fits. */
export function defaultNetwork(name: string): string {
  const bare = name
    .replace(/^@[^/]+\//, "")
    .replace(/^(?:matrix-)?(?:bridge-)?/, "")
    .replace(/-bridge$/, "")
    .replace(/[^a-z0-9-]/g, "")
    .replace(/^[^a-z]+/, "")
    .slice(0, 32)
    .replace(/-+$/, "");
  return NETWORK.test(bare) ? bare : "example";
}

/** Parsed command line. Answers given by flags are checked; the rest are left to prompts or defaults. */
export interface CreateBridgeArgs {
  dir: string;
  given: Partial<ProjectAnswers>;
  yes: boolean;
  force: boolean;
  install: boolean;
  framework?: string;
  help: boolean;
}

export const USAGE = `usage: create-bridge <dir> [--name NAME] [--network ID] [--prefix PREFIX]
                     [--homeserver-url URL] [--domain DOMAIN] [--yes] [--force] [--install]
                     [--framework SPEC]

Scaffolds a new bridge project in <dir>. On a terminal it asks for what the flags do not give;
otherwise (CI, pipes) every value must come from a flag, or --yes takes the defaults.

  --name            npm package name (default: the folder's name)
  --network         network id: adapter name, registration id, URI scheme (default: from the name)
  --prefix          ghost and portal localpart prefix (default: {network}_)
  --homeserver-url  the homeserver's client-server URL (default: http://127.0.0.1:8008)
  --domain          the homeserver's server name (default: localhost)
  --yes, -y         take the defaults for everything not given; ask nothing
  --force           write into a non-empty folder (files of the same name are overwritten)
  --install         run npm install in the new project
  --framework       the matrix-bridgekit dependency spec (default: the running version from
                    npm; from a git checkout: a tarball of the checkout in vendor/)`;

/** Parses argv; throws UsageError naming the bad flag and value. */
export function parseCreateBridgeArgs(argv: string[]): CreateBridgeArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      network: { type: "string" },
      prefix: { type: "string" },
      "homeserver-url": { type: "string" },
      domain: { type: "string" },
      framework: { type: "string" },
      yes: { type: "boolean", short: "y", default: false },
      force: { type: "boolean", default: false },
      install: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return { dir: "", given: {}, yes: false, force: false, install: false, help: true };
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "missing <dir>: the folder to create the project in"
        : `expected one <dir>, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  const given: Partial<ProjectAnswers> = {};
  const problems: string[] = [];
  for (const q of QUESTIONS) {
    const value = values[q.flag.slice(2) as "name"];
    if (value === undefined) continue;
    const problem = checkAnswer(q.key, value, given);
    if (problem) problems.push(`${q.flag} ${JSON.stringify(value)}: ${problem}`);
    else given[q.key] = value;
  }
  if (values.framework !== undefined) {
    const problem = checkFrameworkSpec(values.framework);
    if (problem) problems.push(`--framework ${JSON.stringify(values.framework)}: ${problem}`);
  }
  if (problems.length > 0) throw new UsageError(problems.join("\n"));
  return {
    dir: positionals[0]!,
    given,
    yes: values.yes,
    force: values.force,
    install: values.install,
    ...(values.framework !== undefined ? { framework: values.framework } : {}),
    help: false,
  };
}

/**
 * Completes the answers without asking: flags first, then defaults when `yes`. Throws
 * UsageError listing the missing flags when a value is missing and `yes` is false.
 */
export function answersWithoutPrompts(args: CreateBridgeArgs): ProjectAnswers {
  const missing = QUESTIONS.filter((q) => args.given[q.key] === undefined).map((q) => q.flag);
  if (missing.length > 0 && !args.yes) {
    throw new UsageError(
      `stdin is not a terminal, so create-bridge cannot ask: pass ${missing.join(", ")}, or --yes to use the defaults`,
    );
  }
  const answers: Partial<ProjectAnswers> = {};
  for (const q of QUESTIONS) {
    const value = args.given[q.key] ?? q.default(args.dir, answers);
    const problem = checkAnswer(q.key, value, answers);
    // A default can clash with a flag (--prefix irc with the default network irc): say which.
    if (problem) throw new UsageError(`${q.flag} ${JSON.stringify(value)}: ${problem}`);
    answers[q.key] = value;
  }
  return answers as ProjectAnswers;
}
