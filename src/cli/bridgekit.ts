import { AdapterLoadError } from "../adapter/load-adapter.js";
import { ValidationError } from "../common/validation-error.js";
import { UsageError, type Command } from "./command.js";
import { deadLettersCommand } from "./dead-letters.js";
import { generateRegistrationCommand } from "./generate-registration.js";
import { loginsCommand } from "./logins.js";
import { pingCommand } from "./ping.js";
import { startCommand } from "./start.js";
import { validateCommand } from "./validate.js";

/**
 * The commands, by name. To add one, write a Command (see command.ts) in a file beside this
 * one and list it here.
 */
const commands: Record<string, Command> = {
  "generate-registration": generateRegistrationCommand,
  validate: validateCommand,
  start: startCommand,
  ping: pingCommand,
  "dead-letters": deadLettersCommand,
  logins: loginsCommand,
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const list = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: bridgekit <command> [flags]\n\ncommands:\n${list.join("\n")}\n\nbridgekit <command> --help shows a command's flags.`;
}

function isParseArgsError(err: unknown): err is Error {
  return err instanceof Error && (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true;
}

/**
 * Runs the CLI and returns the exit code instead of exiting, so tests can call it:
 * 0 success, 1 failure (bad files, a problem found), 2 usage error (bad flags, unknown command).
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? console.error : console.log)(help());
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    console.error(`bridgekit: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`usage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      console.error(`bridgekit ${name}: ${err.message}\n\nusage: ${command.usage}`);
      return 2;
    }
    if (err instanceof ValidationError || err instanceof AdapterLoadError) {
      console.error(`bridgekit ${name}: ${err.message}`);
      return 1;
    }
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(`bridgekit ${name}: unexpected failure: ${message}`);
    return 1;
  }
}
