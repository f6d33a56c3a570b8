/**
 * Writing a benchmark's results: `bench/results/<name>.json` (everything measured) and
 * `bench/results/<name>.svg` (the chart), plus a plain-text table on stdout. Also rasterises
 * the SVG to PNG when rsvg-convert is installed (never installs anything).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { barChartSvg, type ChartOptions } from "./svg.js";

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "results");

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
}

export function machineFacts(): MachineFacts {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
  };
}

/** Formats rows as an aligned text table; the first row is the header. */
export function textTable(rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? formatNumber(c) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
      return ri === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 100) return String(Math.round(n));
  if (n !== 0 && Math.abs(n) < 0.1) return String(Number(n.toPrecision(2)));
  return String(Math.round(n * 100) / 100);
}

/** Writes the JSON and the SVG (and a PNG if rsvg-convert exists); returns their paths. */
export function writeResults(name: string, data: unknown, chart: ChartOptions): string[] {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = join(RESULTS_DIR, `${name}.json`);
  const svg = join(RESULTS_DIR, `${name}.svg`);
  writeFileSync(json, JSON.stringify(data, null, 2) + "\n");
  writeFileSync(svg, barChartSvg(chart));
  const written = [json, svg];
  const png = join(RESULTS_DIR, `${name}.png`);
  const r = spawnSync("rsvg-convert", ["-o", png, svg], { encoding: "utf8" });
  if (r.status === 0) written.push(png);
  return written;
}
