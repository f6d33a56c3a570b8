/**
 * Runs the benchmarks: `npm run bench` (all), `npm run bench -- ingest outbound` (some),
 * `--quick` for a ~1 minute run, `--profile` to CPU-profile bridgekit even when it meets its
 * targets. Prints each table and writes bench/results/<name>.json and .svg.
 * Benchmarks are never part of `npm test`.
 */
import { ingest } from "./ingest.js";
import { logins } from "./logins.js";
import { memory } from "./memory.js";
import { outbound } from "./outbound.js";
import { startup } from "./startup.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { buildBenchChildren } from "./lib/rpc.js";

const BENCHMARKS: Record<string, (o: BenchOptions) => Promise<BenchOutcome>> = {
  ingest,
  outbound,
  memory,
  startup,
  logins,
  "media-link": (o) => import("./media-link.js").then((m) => m.mediaLink(o)),
};

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith("--")));
const names = args.filter((a) => !a.startsWith("--"));
for (const f of flags) {
  if (f !== "--quick" && f !== "--profile") {
    console.error(`bench: unknown flag ${f} (known: --quick, --profile)`);
    process.exit(2);
  }
}
for (const n of names) {
  if (!(n in BENCHMARKS)) {
    console.error(`bench: unknown benchmark "${n}" (known: ${Object.keys(BENCHMARKS).join(", ")})`);
    process.exit(2);
  }
}
const options: BenchOptions = { quick: flags.has("--quick"), profile: flags.has("--profile") };
const started = Date.now();
buildBenchChildren();
for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
  const outcome = await BENCHMARKS[name]!(options);
  console.log(`\n== ${outcome.name} ==\n${outcome.table}`);
  for (const note of outcome.notes) console.log(`* ${note}`);
  console.log(`written: ${outcome.files.join(", ")}`);
}
console.log(`\nbench: done in ${Math.round((Date.now() - started) / 1000)} s`);
