import { memorySnapshot } from "./memory.js";

/**
 * RPC handlers measuring a process's RSS growth: `baseline` gives the RSS as it is and after
 * a full GC (node --expose-gc) and starts sampling every 20 ms; `peak` stops and gives the
 * largest RSS seen since. `stop` ends the sampling.
 */
export function rssPeakHandlers() {
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  return {
    baseline: () => {
      const beforeGc = process.memoryUsage.rss();
      const afterGc = memorySnapshot().rssBytes;
      peak = afterGc;
      clearInterval(timer);
      timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
      return { beforeGc, afterGc };
    },
    peak: () => {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
    },
    stop: () => clearInterval(timer),
  };
}
