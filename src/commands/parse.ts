import type { CommandArgument } from "../adapter/adapter.js";
import { UserFacingError } from "../users/errors.js";

/** A command line split into its name (lower-cased) and the rest. */
export interface CommandLine {
  name: string;
  rest: string;
}

/**
 * The command in a message body, or null when it is not one: in the management room every
 * message is (`prefix` undefined); elsewhere only those starting with the prefix and a space
 * (or the prefix alone, read as `help`). Pure.
 */
export function commandLine(body: string, prefix: string | undefined): CommandLine | null {
  let text = body.trim();
  if (prefix !== undefined) {
    if (text === prefix) return { name: "help", rest: "" };
    if (!text.startsWith(`${prefix} `)) return null;
    text = text.slice(prefix.length).trim();
  }
  if (text === "") return null;
  const space = text.search(/\s/);
  const name = (space < 0 ? text : text.slice(0, space)).toLowerCase();
  return { name, rest: space < 0 ? "" : text.slice(space).trim() };
}

/** `<nick> [reason...]`: how `help` shows a command's arguments. Pure. */
export function usage(name: string, args: readonly CommandArgument[] = []): string {
  const parts = args.map((a) => {
    const label = a.rest ? `${a.name}...` : a.name;
    return a.optional ? `[${label}]` : `<${label}>`;
  });
  return [name, ...parts].join(" ");
}

/**
 * Reads the arguments of `rest` by the command's spec: words in order, the last `rest`
 * argument taking the remainder; integers checked. Too few, too many or a bad integer is a
 * bad_input error that shows the usage. Pure.
 */
export function parseArguments(
  name: string,
  args: readonly CommandArgument[] = [],
  rest: string,
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  let remaining = rest.trim();
  const fail = (why: string) => new UserFacingError("bad_input", `${why}. Usage: \`${usage(name, args)}\``);
  for (const arg of args) {
    if (remaining === "") {
      if (!arg.optional) throw fail(`missing <${arg.name}>`);
      continue;
    }
    let word: string;
    if (arg.rest) {
      word = remaining;
      remaining = "";
    } else {
      const space = remaining.search(/\s/);
      word = space < 0 ? remaining : remaining.slice(0, space);
      remaining = space < 0 ? "" : remaining.slice(space).trim();
    }
    if (arg.type === "integer") {
      if (!/^-?\d+$/.test(word) || !Number.isSafeInteger(Number(word)))
        throw fail(`<${arg.name}> must be a whole number, got "${word}"`);
      out[arg.name] = Number(word);
    } else out[arg.name] = word;
  }
  if (remaining !== "") throw fail(`unexpected "${remaining}"`);
  return out;
}
