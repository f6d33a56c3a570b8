/**
 * Runs the real `bridgekit` CLI as a child process, for end-to-end tests and the demo.
 *
 *   const bridge = await startBridgeProcess(configPath);       // resolves once "bridge started" is logged
 *   ... bridge.logs() ...                                       // the JSON log lines so far
 *   const { code } = await bridge.stop();                       // SIGTERM, wait; code 0 = clean stop
 *   const r = await runBridgekit(["ping", "--config", configPath]);   // a short command: code, stdout, stderr
 *
 * The CLI runs from source (`node --import tsx src/cli/main-entry.ts`), so a stale or missing
 * dist/ cannot make a test pass or fail wrongly; bin/bridgekit.js (dist) is covered by
 * test/unit/cli/bin.test.ts. The child's working folder is the repository root, so examples
 * that import "matrix-bridgekit" resolve it to src/ through tsconfig paths, as in the tests.
 * BRIDGEKIT_* variables of this process are not inherited (BRIDGEKIT_TEST_* are); pass what
 * the child needs in `env`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/** The repository root. */
export const REPO_ROOT = join(import.meta.dirname, "../../..");

/** `node` arguments that run the bridgekit CLI from source with `args`. */
export function bridgekitArgs(args: readonly string[]): string[] {
  return ["--import", "tsx", join(REPO_ROOT, "src", "cli", "main-entry.ts"), ...args];
}

/** A log line as pino writes it: `level` (30 info, 20 debug…), `msg`, and the fields. */
export type LogLine = Record<string, unknown> & { level?: number; msg?: string };

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BridgeProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout's JSON log lines so far; a line that is not JSON is an error (logs are JSON only). */
  logs(): LogLine[];
  /** Resolves with the first log line (already written or to come) that matches; rejects on exit or timeout. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal (no-op once exited). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`, default 30 s). Idempotent. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
}

export interface StartBridgeProcessOptions {
  /** Extra environment (e.g. BRIDGEKIT_LOGGING_LEVEL: "debug"). */
  env?: Record<string, string>;
  /** Wait for the "bridge started" log line (default true); false returns at once. */
  waitForStart?: boolean;
  /** How long to wait for the start (default 60 s). */
  startTimeoutMs?: number;
  /**
   * Run in its own process group, so that a terminal's Ctrl-C reaches only the parent, which
   * then stops the bridge once (the demo). Default false.
   */
  ownProcessGroup?: boolean;
  /** Also copy the child's stdout and stderr here, e.g. a log file (the demo). */
  copyTo?: NodeJS.WritableStream;
}

/** Most lines kept per stream; older ones are dropped (a bound, far above what a test writes). */
const MAX_LINES = 200_000;

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("BRIDGEKIT_") && !name.startsWith("BRIDGEKIT_TEST_")) delete env[name];
  }
  return { ...env, ...extra };
}

/** Starts `bridgekit start --config <configPath>` and (by default) waits until it has started. */
export async function startBridgeProcess(
  configPath: string,
  opts: StartBridgeProcessOptions = {},
): Promise<BridgeProcess> {
  const child = spawn(process.execPath, bridgekitArgs(["start", "--config", configPath]), {
    cwd: REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.ownProcessGroup ?? false,
  });
  const out: string[] = [];
  const err: string[] = [];
  let partial = "";
  const parsed: LogLine[] = [];
  let notJson: string | undefined;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    opts.copyTo?.write(chunk);
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    out.push(...lines);
    for (const l of lines) {
      if (l.trim() === "") continue;
      try {
        parsed.push(JSON.parse(l) as LogLine);
      } catch {
        notJson ??= l;
      }
    }
    if (out.length > MAX_LINES) out.splice(0, out.length - MAX_LINES);
    if (parsed.length > MAX_LINES) parsed.splice(0, parsed.length - MAX_LINES);
    notify();
  });
  child.stderr.on("data", (chunk: string) => {
    opts.copyTo?.write(chunk);
    err.push(chunk);
    if (err.length > MAX_LINES) err.splice(0, err.length - MAX_LINES);
  });
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      status = { code, signal };
      notify();
      resolve(status);
    });
  });
  child.once("error", (e) => err.push(`spawn failed: ${e.message}\n`));
  const killOnExit = () => {
    if (status === undefined) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  void exited.then(() => process.removeListener("exit", killOnExit));

  const stdout = () => out.join("\n") + (partial === "" ? "" : `\n${partial}`);
  const stderr = () => err.join("");
  const logs = (): LogLine[] => {
    if (notJson !== undefined) {
      throw new Error(`the bridge wrote a stdout line that is not JSON: ${notJson.slice(0, 200)}`);
    }
    return [...parsed];
  };
  const describe = () => `--- stderr ---\n${stderr().slice(-4000)}\n--- stdout ---\n${stdout().slice(-4000)}`;

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      let cursor = 0;
      const check = () => {
        if (notJson !== undefined) {
          finish();
          reject(new Error(`the bridge wrote a stdout line that is not JSON: ${notJson.slice(0, 200)}`));
          return;
        }
        if (cursor > parsed.length) cursor = 0; // old lines were dropped
        const found = parsed.slice(cursor).find(match);
        cursor = parsed.length;
        if (found) {
          finish();
          resolve(found);
        } else if (status !== undefined) {
          finish();
          reject(
            new Error(
              `the bridge exited (${JSON.stringify(status)}) before the awaited log line\n${describe()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no such log line from the bridge within ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let stopping: Promise<ExitStatus> | undefined;
  const proc: BridgeProcess = {
    child,
    stdout,
    stderr,
    logs,
    waitForLog,
    exited,
    kill(signal = "SIGTERM") {
      if (status === undefined) child.kill(signal);
    },
    stop(timeoutMs = 30_000) {
      stopping ??= (async () => {
        if (status !== undefined) return status;
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        const s = await exited;
        clearTimeout(timer);
        return s;
      })();
      return stopping;
    },
  };
  if (opts.waitForStart ?? true) {
    try {
      await waitForLog((l) => l.msg === "bridge started", opts.startTimeoutMs ?? 60_000);
    } catch (e) {
      await proc.stop(5_000);
      throw e;
    }
  }
  return proc;
}

/** Runs a short bridgekit command (ping, generate-registration, validate) to completion. */
export async function runBridgekit(
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, bridgekitArgs(args), {
    cwd: REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c) => resolve(c));
  });
  clearTimeout(timer);
  return { code, stdout, stderr };
}
