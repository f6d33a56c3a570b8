import { parseArgs } from "node:util";
import { generateRegistration, saveRegistration } from "../registration/index.js";
import { ValidationError } from "../common/validation-error.js";

/** A CLI command: parses its own flags, returns the process exit code. */
interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  "generate-registration": {
    summary: "write a new registration YAML with fresh tokens",
    usage: `bridgekit generate-registration --id ID --url URL --domain DOMAIN --sender LOCALPART --prefix PREFIX --output FILE

  --id        the bridge's unique id on the homeserver (e.g. irc)
  --url       where the homeserver reaches the bridge (e.g. http://127.0.0.1:9000)
  --domain    the homeserver's server name (e.g. example.org)
  --sender    the bridge bot's localpart (default: {id}bot)
  --prefix    ghost and portal prefix (default: {id}_), giving @{prefix}{remote id}
  --output    the file to write (mode 0600; default: registration.yaml)`,
    async run(args) {
      const { values } = parseArgs({
        args,
        options: {
          id: { type: "string" },
          url: { type: "string" },
          domain: { type: "string" },
          sender: { type: "string" },
          prefix: { type: "string" },
          output: { type: "string", default: "registration.yaml" },
        },
      });
      const missing = (["id", "url", "domain"] as const).filter((k) => values[k] === undefined);
      if (missing.length > 0) {
        console.error(`generate-registration: missing ${missing.map((k) => `--${k}`).join(", ")}`);
        return 2;
      }
      const id = values.id!;
      const prefix = values.prefix ?? `${id}_`;
      const registration = generateRegistration({
        id,
        url: values.url!,
        domain: values.domain!,
        senderLocalpart: values.sender ?? `${id}bot`,
        ghosts: `${prefix}{id}`,
        portals: `${prefix}{id}`,
      });
      await saveRegistration(values.output, registration);
      console.log(`wrote ${values.output} (mode 0600); add it to the homeserver's app_service_config_files`);
      return 0;
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const list = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: bridgekit <command> [flags]\n\ncommands:\n${list.join("\n")}\n\nbridgekit <command> --help shows a command's flags.`;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
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
    if (err instanceof ValidationError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`bridgekit ${name}: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }
}
