import { parseArgs } from "node:util";
import { Bridge } from "../bridge/bridge.js";
import { createLogger, redactText, type Logger } from "../common/logger.js";
import { loadConfig } from "../config/load.js";
import type { BridgeConfig } from "../config/types.js";
import type { Command } from "./command.js";

/** How long a graceful stop waits for the outbox to be delivered before closing anyway. */
export const STOP_FLUSH_TIMEOUT_MS = 10_000;

export interface RunBridgeOptions {
  /** The bridge config file. */
  configPath: string;
  /** Environment for BRIDGEKIT_* overrides (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where the JSON logs go (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** Where the one-line failure message goes (default console.error). */
  printError?: (line: string) => void;
  /** Aborting it stops the bridge gracefully; the `start` command aborts it on SIGTERM/SIGINT. */
  stopSignal?: AbortSignal;
  /** Called once the bridge is started (tests read `bridge.listeningPort`). Must not throw. */
  onStarted?: (bridge: Bridge) => void;
  /** How long a stop waits for the outbox to drain (default STOP_FLUSH_TIMEOUT_MS). */
  flushTimeoutMs?: number;
}

/**
 * Runs a bridge from its config file until `stopSignal` aborts, then stops it gracefully:
 * stop accepting, finish the events being handled, give the outbox up to `flushTimeoutMs` to
 * deliver (what is left stays in the durable outbox for the next start), stop the adapter,
 * close the client and the store. Resolves to the exit code: 0 after a clean stop, 1 when the
 * bridge could not start (after printing one line saying why; with a stack trace only when
 * logging.level is debug or trace) or did not stop cleanly. Never rejects.
 */
export async function runBridge(o: RunBridgeOptions): Promise<number> {
  const env = o.env ?? process.env;
  const printError = o.printError ?? ((line: string) => console.error(line));
  let config: BridgeConfig | undefined;
  const verbose = () => {
    const level = config?.logging.level ?? env.BRIDGEKIT_LOGGING_LEVEL;
    return level === "debug" || level === "trace";
  };
  const fail = (err: unknown): number => {
    const message = err instanceof Error ? err.message : String(err);
    const stack = verbose() && err instanceof Error && err.stack !== undefined ? `\n${err.stack}` : "";
    printError(redactText(`bridgekit start: ${message}${stack}`));
    return 1;
  };

  let log: Logger;
  let bridge: Bridge;
  try {
    config = await loadConfig(o.configPath, env);
    log = createLogger({ level: config.logging.level, name: "bridgekit" }, o.logDestination);
    bridge = await Bridge.fromConfig(config, { logger: log });
  } catch (err) {
    return fail(err);
  }

  try {
    await bridge.start(o.stopSignal ? { signal: o.stopSignal } : {});
  } catch (err) {
    await bridge
      .stop()
      .catch((stopErr: unknown) => log.error({ err: stopErr }, "cleanup after a failed start"));
    if (o.stopSignal?.aborted) {
      log.info("stopped before the bridge started (a standby still waiting for the lease)");
      return 0;
    }
    return fail(err);
  }
  o.onStarted?.(bridge);

  const lost = await Promise.race([waitForAbort(o.stopSignal).then(() => undefined), bridge.leaseLost]);
  if (lost !== undefined) {
    log.error({ reason: lost }, "stopping: this process lost the store's writer lease and must not write");
    await bridge.stop().catch((err: unknown) => log.error({ err }, "the bridge did not stop cleanly"));
    return 1;
  }
  log.info("stopping: no new requests; finishing those in flight");
  try {
    await bridge.appservice.close(); // stop accepting, finish the events being handled
    log.info("requests in flight finished; delivering the outbox");
    const flushed = await withTimeout(bridge.flush(), o.flushTimeoutMs ?? STOP_FLUSH_TIMEOUT_MS);
    if (!flushed) {
      log.warn(
        { timeoutMs: o.flushTimeoutMs ?? STOP_FLUSH_TIMEOUT_MS },
        "the outbox was not delivered in time; what is left is delivered on the next start",
      );
    }
    await bridge.stop();
    return 0;
  } catch (err) {
    log.error({ err }, "the bridge did not stop cleanly");
    return 1;
  }
}

function waitForAbort(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return new Promise(() => undefined); // runs until the process ends
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/** Resolves true when `promise` settles in time, false after `ms`; a rejection propagates. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const startCommand: Command = {
  summary: "run the bridge until SIGTERM or SIGINT",
  usage: `bridgekit start [--config config.yaml]

  --config    the bridge config (default: config.yaml)

Loads the config (with BRIDGEKIT_* overrides), the registration, the store and the adapter;
listens for the homeserver, checks the homeserver both ways, and runs the adapter. Logs are
JSON lines on stdout (tokens redacted). A problem at start-up is one line on stderr and
exit 1.

SIGTERM or SIGINT stops gracefully: no new requests, events being handled finish (events
recorded but not handled yet wait in the store for the next start), the outbox gets up to
${STOP_FLUSH_TIMEOUT_MS / 1000} s to deliver (the rest is kept for the next start), then exit 0.
A second signal exits at once with 1.`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: "string", default: "config.yaml" } } });
    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (!stop.signal.aborted) {
        stop.abort();
        return;
      }
      console.error(`bridgekit start: second ${signal}: exiting without finishing the stop`);
      process.exit(1);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      return await runBridge({ configPath: values.config, stopSignal: stop.signal });
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  },
};
