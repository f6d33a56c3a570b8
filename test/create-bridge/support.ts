/** Shared helpers of the slow create-bridge tests: the built bin, and running commands. */
import { spawn, type SpawnOptions } from "node:child_process";
import { existsSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");
export const BIN = join(ROOT, "bin", "create-bridge.js");

/**
 * Throws unless dist/cli/create-bridge*.js exist and are newer than their sources: these
 * tests run the real bin, which imports dist/. `npm run test:create-bridge` builds first.
 */
export function assertBuilt(): void {
  const sources = readdirSync(join(ROOT, "src", "cli")).filter((f) => f.startsWith("create-bridge"));
  for (const source of sources) {
    const built = join(ROOT, "dist", "cli", source.replace(/\.ts$/, ".js"));
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(ROOT, "src", "cli", source)).mtimeMs) {
      throw new Error(
        `${built} is missing or older than src/cli/${source}: run npm run build (npm run test:create-bridge does)`,
      );
    }
  }
}

export interface Result {
  code: number | null;
  output: string;
}

/** Runs a command to its end with stdin closed; resolves with its exit code and output (stdout+stderr). */
export function runCommand(
  command: string,
  args: string[],
  opts: SpawnOptions & { cwd: string },
): Promise<Result> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT, or a `node --test` inside (the project's npm test) skips its files.
    const env = { ...(opts.env ?? process.env) };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(command, args, { ...opts, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** The last lines of an output, for an assertion message. */
export function tail(output: string, lines = 40): string {
  return output.split("\n").slice(-lines).join("\n");
}
