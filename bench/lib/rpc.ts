/**
 * A tiny request/reply protocol over Node's IPC channel between the benchmark runner and
 * its child processes (servers under test, load generators). The child calls `serve` with
 * handlers; the parent uses `spawnChild` and `child.call(op, args)`. Errors in a handler are
 * sent back and rethrown in the parent with the child's message, so nothing fails silently.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface Request {
  id: number;
  op: string;
  args: unknown;
}
interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}
interface ReadyMessage {
  ready: true;
  info: unknown;
}

export type Handlers = Record<string, (args: never) => unknown>;

/**
 * In a child: answers the parent's calls with `handlers`, then tells the parent it is ready
 * (with `info`, e.g. the port it listens on). The "exit" op is built in: it runs `onExit`
 * (if given) and exits the process with code 0.
 */
export function serve(handlers: Handlers, info: unknown, onExit?: () => Promise<void>): void {
  if (!process.send) throw new Error("this benchmark child must be started by bench/run.ts (no IPC channel)");
  const reply = (r: Reply) => process.send!(r);
  process.on("message", (raw: unknown) => {
    const req = raw as Request;
    if (req.op === "exit") {
      void (async () => {
        try {
          await onExit?.();
          reply({ id: req.id, ok: true, value: null });
        } catch (err) {
          reply({ id: req.id, ok: false, error: String((err as Error).stack ?? err) });
        } finally {
          process.disconnect();
          setImmediate(() => process.exit(0));
        }
      })();
      return;
    }
    const handler = handlers[req.op];
    if (!handler) {
      reply({ id: req.id, ok: false, error: `unknown op "${req.op}"` });
      return;
    }
    Promise.resolve()
      .then(() => handler(req.args as never))
      .then(
        (value) => reply({ id: req.id, ok: true, value: value ?? null }),
        (err: unknown) => reply({ id: req.id, ok: false, error: String((err as Error).stack ?? err) }),
      );
  });
  process.send({ ready: true, info } satisfies ReadyMessage);
}

export interface Child<Info = unknown> {
  readonly process: ChildProcess;
  readonly pid: number;
  /** What the child passed to `serve` as `info`. */
  readonly info: Info;
  /** Calls one of the child's handlers; rejects with the child's error or if it exits. */
  call<T = unknown>(op: string, args?: unknown): Promise<T>;
  /** Asks the child to exit (runs its onExit) and waits; kills it after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Extra node flags, e.g. ["--expose-gc"] or ["--cpu-prof", "--cpu-prof-dir=..."]. */
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
  /** How long to wait for `serve` to report ready (default 60 s). */
  readyTimeoutMs?: number;
}

/**
 * Starts `script` (a .ts file under bench/) with JSON `config` as its only argument: its
 * compiled JavaScript from bench/.build when `buildBenchChildren` made one (what users run is
 * compiled code; tsx's transform adds a helper call per function expression), else through tsx.
 */
export async function spawnChild<Info = unknown>(
  script: string | URL,
  config: unknown,
  opts: SpawnOptions = {},
): Promise<Child<Info>> {
  const source = script instanceof URL ? fileURLToPath(script) : script;
  const compiled = compiledPath(source);
  const path = compiled ?? source;
  const child = fork(path, [JSON.stringify(config)], {
    execArgv: [...(compiled ? [] : ["--import", "tsx"]), ...(opts.nodeFlags ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = `${path} exited (code ${code}, signal ${signal})`;
      for (const p of pending.values()) p.reject(new Error(exited));
      pending.clear();
      resolve();
    });
  });
  const info = await new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${path} did not become ready in time`));
    }, opts.readyTimeoutMs ?? 60_000);
    child.on("message", (raw: unknown) => {
      const msg = raw as Reply | ReadyMessage;
      if ("ready" in msg) {
        clearTimeout(timer);
        resolve(msg.info as Info);
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(`${path}: ${msg.error}`));
    });
    void exitedPromise.then(() => {
      clearTimeout(timer);
      reject(new Error(exited));
    });
  });
  const call = <T>(op: string, args?: unknown): Promise<T> => {
    if (exited) return Promise.reject(new Error(exited));
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, args } satisfies Request);
    });
  };
  return {
    process: child,
    pid: child.pid!,
    info,
    call,
    async stop(timeoutMs = 30_000) {
      if (exited) return;
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      await call("exit").catch(() => undefined); // the exit itself is what we wait for below
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUILD = join(REPO, "bench", ".build");
let built = false;

/**
 * Compiles the benchmark children (bench/servers, bench/load, bench/lib and the src/ they
 * import) to bench/.build with tsc, once per run. `BENCH_TSX=1` skips this and runs them
 * through tsx instead.
 */
export function buildBenchChildren(): void {
  if (process.env.BENCH_TSX === "1") return;
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  rmSync(BUILD, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [tsc, "-p", join(REPO, "bench", "tsconfig.json")], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`compiling the benchmark children failed:\n${r.stdout}${r.stderr}`);
  built = true;
}

function compiledPath(source: string): string | undefined {
  if (!built || !source.endsWith(".ts")) return undefined;
  const path = join(BUILD, relative(REPO, source)).replace(/\.ts$/, ".js");
  return existsSync(path) ? path : undefined;
}
