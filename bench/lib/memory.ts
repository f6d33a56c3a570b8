/** Memory figures of the current process, after a full GC when node runs with --expose-gc. */
export interface MemorySnapshot {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** The largest RSS this process has had (getrusage). */
  maxRssBytes: number;
  /** Whether a full GC ran first (node --expose-gc). */
  gc: boolean;
}

export function memorySnapshot(): MemorySnapshot {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    heapTotalBytes: m.heapTotal,
    externalBytes: m.external,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    gc: gc !== undefined,
  };
}
