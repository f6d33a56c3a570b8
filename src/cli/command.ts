/** One `bridgekit` command. The command table in bridgekit.ts maps names to these. */
export interface Command {
  /** One line for `bridgekit --help`. */
  summary: string;
  /** The command's flags, shown by `bridgekit <command> --help` and after a usage error. */
  usage: string;
  /** Parses its own flags and runs; resolves to the process exit code (0 ok, 1 failed, 2 usage). */
  run(args: string[]): Promise<number>;
}

/**
 * Thrown by a command for a wrong invocation (a missing or conflicting flag). The CLI prints
 * the message and the command's usage and exits with 2.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
