/**
 * Start-up: the time from spawning a process to the first transaction it answers 200, for
 * `bridgekit start` (the compiled bin, bin/bridgekit.js over dist/, as users run it; a
 * sqlite store, a one-file .mjs adapter, the fake homeserver in a process of its own) and
 * for a minimal matrix-appservice script. The runner PUTs a one-event transaction every 2 ms
 * until one is answered 200. Several repetitions, median reported.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { dump } from "js-yaml";
import { benchRegistration } from "./lib/bridge-config.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { machineFacts, textTable, writeResults } from "./lib/report.js";
import { spawnChild } from "./lib/rpc.js";
import { median, round } from "./lib/stats.js";
import { BENCH_DOMAIN, transactionBody } from "./lib/transactions.js";
import { freePort } from "../test/e2e/support/synapse.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

const ADAPTER = `export default () => ({
  name: "bench",
  start() { return Promise.resolve(); },
  stop() { return Promise.resolve(); },
  onMessage() { return Promise.resolve(); },
});
`;

/** Spawns `args` and PUTs a transaction until it is answered 200; returns ms since the spawn. */
async function timeToFirstAnswer(
  args: string[],
  cwd: string,
  port: number,
  hsToken: string,
): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  try {
    const body = transactionBody(`startup${port}${Date.now()}`, 0, 1, 1);
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`${args.join(" ")} exited before answering: ${stderr}`);
      if (performance.now() - t0 > 30_000)
        throw new Error(`${args.join(" ")} answered nothing in 30 s: ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${port}/_matrix/app/v1/transactions/startup-${i}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${hsToken}`, "Content-Type": "application/json" },
        body,
      }).then(
        async (res) => (await res.arrayBuffer(), res.status === 200),
        () => false,
      );
      if (ok) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exit;
    clearTimeout(timer);
  }
}

export async function startup(o: BenchOptions): Promise<BenchOutcome> {
  const bin = join(ROOT, "bin", "bridgekit.js");
  if (!existsSync(join(ROOT, "dist", "cli", "start.js")))
    throw new Error("startup: dist/cli/start.js is missing; run `npm run build` first (the bin runs dist/)");
  const reps = o.quick ? 2 : 5;
  const dir = mkdtempSync(join(tmpdir(), "bridgekit-startup-"));
  const bridgekit: number[] = [];
  const anchor: number[] = [];
  const hsPort = await freePort();
  const registration = benchRegistration(`http://127.0.0.1:${hsPort}`);
  const hs = await spawnChild<{ url: string }>(new URL("./servers/fake-hs.ts", import.meta.url), {
    asToken: registration.as_token,
    domain: BENCH_DOMAIN,
    botLocalpart: "benchbot",
  });
  try {
    writeFileSync(join(dir, "adapter.mjs"), ADAPTER);
    for (let i = 0; i < reps; i++) {
      const port = await freePort();
      registration.url = `http://127.0.0.1:${port}`;
      writeFileSync(join(dir, "registration.yaml"), dump(registration), { mode: 0o600 });
      writeFileSync(
        join(dir, "config.yaml"),
        dump({
          homeserver: { url: hs.info.url, domain: BENCH_DOMAIN },
          appservice: { registration: "registration.yaml", host: "127.0.0.1", port },
          store: `sqlite://data/bench-${i}.db`,
          bridge: { ghosts: "bench_{id}", portals: "bench_{id}" },
          adapter: { module: "./adapter.mjs" },
          logging: { level: "warn" },
        }),
      );
      bridgekit.push(
        await timeToFirstAnswer(
          [bin, "start", "--config", join(dir, "config.yaml")],
          dir,
          port,
          registration.hs_token,
        ),
      );
      const aport = await freePort();
      anchor.push(
        await timeToFirstAnswer(
          [join(ROOT, "bench", "servers", "anchor-min.mjs"), String(aport), registration.hs_token],
          ROOT,
          aport,
          registration.hs_token,
        ),
      );
      process.stdout.write(".");
    }
  } finally {
    process.stdout.write("\n");
    await hs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const bk = median(bridgekit);
  const as = median(anchor);
  const table = textTable([
    ["system", "median ms", "min ms", "max ms", "x matrix-appservice"],
    [
      "bridgekit start (compiled bin, sqlite)",
      round(bk),
      round(Math.min(...bridgekit)),
      round(Math.max(...bridgekit)),
      round(bk / as),
    ],
    [
      "matrix-appservice 2.0.0 (minimal)",
      round(as),
      round(Math.min(...anchor)),
      round(Math.max(...anchor)),
      1,
    ],
  ]);
  const notes = [
    `spawn to first transaction answered 200, ${reps} repetitions each, alternating; bridgekit checks the homeserver (versions, ping) before its adapter starts, the transaction may be answered as soon as it listens`,
  ];
  const data = {
    name: "startup",
    date: new Date().toISOString(),
    machine: machineFacts(),
    quick: o.quick,
    notes,
    bridgekitMs: bridgekit,
    anchorMs: anchor,
  };
  const files = writeResults("startup", data, {
    title: "Start-up: spawn to first answered transaction (median ms)",
    subtitle: `${data.date}${o.quick ? " (quick)" : ""}`,
    unit: "ms",
    groups: [
      {
        label: "start-up",
        bars: [
          { label: "bridgekit start", value: bk },
          { label: "matrix-appservice", value: as },
        ],
      },
    ],
  });
  return { name: "startup", table, files, notes };
}
