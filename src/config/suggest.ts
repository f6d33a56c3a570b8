/**
 * Edit distance between two strings, counting an insertion, deletion, substitution or a
 * swap of two neighbouring characters (`prot` -> `port`) as one edit. For short inputs
 * only (config key names).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Lower case without separators, so `max_body_bytes`, `max-body-bytes` and `maxBodyBytes` compare equal. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[_\-\s]/g, "");
}

/**
 * The candidate closest to `name`, if one is close enough to be a likely typo (a different
 * spelling of the same words, or a few characters off); otherwise undefined. Pure.
 */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  const target = normalise(name);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(target, normalise(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(target.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}
