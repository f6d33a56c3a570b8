/**
 * A grouped horizontal bar chart as a standalone SVG document, drawn by hand so the
 * benchmarks need no charting dependency. Pure; no I/O.
 */

export interface ChartGroup {
  label: string;
  bars: Array<{ label: string; value: number }>;
}

export interface ChartOptions {
  title: string;
  /** The unit shown on the axis and after each value, e.g. "events/s". */
  unit: string;
  groups: ChartGroup[];
  /** Log10 scale, for values spanning orders of magnitude. */
  log?: boolean;
  /** A note under the title (command, date, machine). */
  subtitle?: string;
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  if (v >= 100) return Math.round(v).toLocaleString("en-US");
  return String(Math.round(v * 100) / 100);
}

export function barChartSvg(o: ChartOptions): string {
  const seriesLabels = [...new Set(o.groups.flatMap((g) => g.bars.map((b) => b.label)))];
  const color = (label: string) => PALETTE[seriesLabels.indexOf(label) % PALETTE.length]!;
  const values = o.groups
    .flatMap((g) => g.bars.map((b) => b.value))
    .filter((v) => Number.isFinite(v) && v > 0);
  const max = Math.max(1, ...values);
  const minLog = o.log ? Math.floor(Math.log10(Math.min(...values, max))) : 0;
  const maxLog = o.log ? Math.ceil(Math.log10(max)) : 0;
  const left = 190;
  const width = 900;
  const plotW = width - left - 150;
  const barH = 16;
  const top = o.subtitle ? 64 : 48;
  const scale = (v: number): number => {
    if (!Number.isFinite(v) || v <= 0) return 0;
    if (!o.log) return (v / max) * plotW;
    const span = Math.max(1, maxLog - minLog);
    return Math.max(2, ((Math.log10(v) - minLog) / span) * plotW);
  };
  const parts: string[] = [];
  let y = top;
  for (const g of o.groups) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const w = scale(b.value);
      parts.push(
        `<text x="${left - 6}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color(b.label)}"/>`,
        `<text x="${left + w + 4}" y="${y + 12}">${esc(fmt(b.value))}</text>`,
      );
      y += barH + 4;
    }
    y += 10;
  }
  const axis: string[] = [];
  if (o.log) {
    for (let e = minLog; e <= maxLog; e++) {
      const x = left + scale(10 ** e);
      axis.push(
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${y}" stroke="#ddd"/>`,
        `<text x="${x}" y="${y + 14}" text-anchor="middle" fill="#666">${esc(fmt(10 ** e))}</text>`,
      );
    }
  }
  const height = y + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="16" font-weight="bold">${esc(o.title)}</text>`,
    o.subtitle ? `<text x="10" y="44" fill="#555">${esc(o.subtitle)}</text>` : "",
    ...axis,
    ...parts,
    `<text x="${left}" y="${height - 10}" fill="#666">${esc(o.unit)}${o.log ? " (log scale)" : ""}</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
