/**
 * The parent's handle on a bridge child process (bridge-child.ts): start it, wait until it
 * is ready, ask it for memory samples, a flush or a drain, SIGKILL it, or stop it
 * gracefully. Every wait is bounded and fails with the child's last stderr lines, so a
 * broken child shows why.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type * as Esbuild from "esbuild";
import type { ChildMessage, ChildOptions, MemorySample, ParentMessage } from "./child-protocol.js";

const CHILD = fileURLToPath(new URL("./bridge-child.ts", import.meta.url));
const TAIL_CHARS = 4000;

interface Entry {
  file: string;
  execArgv: string[];
}
let entry: Promise<Entry> | undefined;

/**
 * How to run bridge-child.ts. Through tsx a child needs seconds to start (every source file
 * is transformed on load), which would make a 40-kill test mostly waiting; so the child is
 * bundled once per test process with esbuild (tsx's own transformer, already installed)
 * into node_modules/.cache (so its package imports, static and dynamic, resolve as from the
 * source), packages left as imports. Falls back to tsx if esbuild is not there.
 */
function childEntry(): Promise<Entry> {
  entry ??= (async (): Promise<Entry> => {
    let esbuild: typeof Esbuild;
    try {
      esbuild = await import("esbuild");
    } catch {
      return { file: CHILD, execArgv: ["--import", "tsx"] };
    }
    const cache = fileURLToPath(new URL("../../../node_modules/.cache/", import.meta.url));
    mkdirSync(cache, { recursive: true });
    const dir = mkdtempSync(join(cache, "bk-reliability-child-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "bridge-child.mjs");
    await esbuild.build({
      entryPoints: [CHILD],
      outfile: file,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "warning",
      packages: "external",
    });
    return { file, execArgv: [] };
  })();
  return entry;
}

export class ChildBridge {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = "";
  private readonly listeners = new Set<(m: ChildMessage) => void>();
  private fatal: string | undefined;
  private ready = false;
  /** performance.now() when the child reported ready (undefined until then). */
  readyAt: number | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(private readonly proc: ChildProcess) {
    proc.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-TAIL_CHARS);
    });
    proc.stdout?.resume(); // nothing is expected there; never let the pipe fill up
    proc.on("message", (m: ChildMessage) => {
      if (m.type === "fatal") this.fatal = m.message;
      if (m.type === "ready") {
        this.ready = true;
        this.readyAt = performance.now();
      }
      for (const listener of this.listeners) listener(m);
    });
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  /** Starts a child; `gc` runs it with --expose-gc so memory samples follow a full GC. */
  static async spawn(options: ChildOptions, opts: { gc?: boolean } = {}): Promise<ChildBridge> {
    const { file, execArgv } = await childEntry();
    const env: NodeJS.ProcessEnv = { ...process.env, BK_RELIABILITY_CHILD: JSON.stringify(options) };
    delete env.NODE_TEST_CONTEXT;
    const proc = fork(file, [], {
      execArgv: [...execArgv, ...(opts.gc ? ["--expose-gc"] : [])],
      env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    return new ChildBridge(proc);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** False once the child exited. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last few KB the child wrote to stderr (its warn/error logs). */
  stderrTail(): string {
    return this.stderr;
  }

  /** Resolves when the child reports ready; rejects if it exits, fails, or takes over `timeoutMs`. */
  waitReady(timeoutMs = 30_000): Promise<void> {
    if (this.ready) return Promise.resolve();
    return this.waitFor((m) => m.type === "ready", timeoutMs, "ready").then(() => undefined);
  }

  /** SIGKILLs the child and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.exitInfo === undefined) this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** Asks for a graceful stop (Bridge.stop) and waits for exit code 0; SIGKILLs and throws otherwise. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (this.exitInfo !== undefined) throw new Error(`bridge child already exited: ${this.describeExit()}`);
    this.post({ type: "stop" });
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`bridge child did not stop cleanly: ${this.describeExit()}`);
  }

  /** A memory sample taken by the child (after a full GC if spawned with gc). */
  async memory(): Promise<MemorySample> {
    this.post({ type: "memory" });
    const m = await this.waitFor((x) => x.type === "memory", 10_000, "a memory sample");
    return m as MemorySample;
  }

  /** Waits until the child's outbox is delivered (Bridge.flush). */
  async flush(timeoutMs = 60_000): Promise<void> {
    this.post({ type: "flush" });
    await this.waitFor((m) => m.type === "flushed", timeoutMs, "the outbox to flush");
  }

  /**
   * Waits until every item recorded in the child's inbox was handled or dead-lettered
   * (appservice.drain(): retries included). A 200 only says a transaction was recorded.
   */
  async drain(timeoutMs = 120_000): Promise<void> {
    this.post({ type: "drain" });
    await this.waitFor((m) => m.type === "drained", timeoutMs, "the inbox to drain");
  }

  async stats(): Promise<Record<string, number>> {
    this.post({ type: "stats" });
    const m = await this.waitFor((x) => x.type === "stats", 10_000, "stats");
    return (m as { stats: Record<string, number> }).stats;
  }

  private post(message: ParentMessage): void {
    if (this.exitInfo !== undefined || !this.proc.connected)
      throw new Error(`bridge child is not running (${this.describeExit()}); stderr:\n${this.stderr}`);
    this.proc.send(message);
  }

  private describeExit(): string {
    if (this.exitInfo === undefined) return "still running";
    const { code, signal } = this.exitInfo;
    return `${signal !== null ? `signal ${signal}` : `exit code ${code}`}${this.fatal ? `: ${this.fatal}` : ""}`;
  }

  private waitFor(
    match: (m: ChildMessage) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = (m: ChildMessage) => {
        if (match(m)) {
          done();
          resolve(m);
        } else if (m.type === "fatal") {
          done();
          reject(new Error(`bridge child failed while waiting for ${what}: ${m.message}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`bridge child: no ${what} within ${timeoutMs} ms; stderr:\n${this.stderr}`));
      }, timeoutMs);
      this.listeners.add(listener);
      void this.exited.then(() => {
        if (!this.listeners.has(listener)) return;
        done();
        reject(
          new Error(`bridge child exited (${this.describeExit()}) before ${what}; stderr:\n${this.stderr}`),
        );
      });
    });
  }
}
