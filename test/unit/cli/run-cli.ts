import { mock } from "node:test";
import { main } from "../../../src/cli/bridgekit.js";

/** Runs the bridgekit CLI's main() in-process, with console output captured. */
export async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = mock.method(console, "log", (...a: unknown[]) => void out.push(a.join(" ")));
  const error = mock.method(console, "error", (...a: unknown[]) => void err.push(a.join(" ")));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}
