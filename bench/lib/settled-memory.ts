import { memorySnapshot, type MemorySnapshot } from "./memory.js";

/**
 * A memory snapshot after a full GC and after the FinalizationRegistry callbacks that GC
 * queued have run (they run as tasks, after the GC that found their targets dead; node's
 * AbortSignal.timeout clears its timer in one), then a full GC again. Without the wait,
 * such timers of dead signals are still counted.
 */
export async function settledMemorySnapshot(): Promise<MemorySnapshot> {
  memorySnapshot();
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  return memorySnapshot();
}
