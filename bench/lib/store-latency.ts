/**
 * How long one store operation takes on each backend, measured sequentially through the
 * Store API (the way the transaction journal issues them): the unit cost behind the
 * "store operations per event" figure of the ingest profile.
 */
import { openStore } from "../../src/store/index.js";
import { freshBackend, type BackendName } from "./backends.js";
import { median } from "./stats.js";

export interface StoreLatency {
  backend: BackendName;
  setMs: number;
  getMs: number;
}

export async function storeLatency(backends: BackendName[], ops = 100): Promise<StoreLatency[]> {
  const out: StoreLatency[] = [];
  for (const name of backends) {
    const backend = freshBackend(name);
    if (!backend) continue;
    const store = await openStore(backend.url, { prefix: backend.prefix });
    try {
      const kv = store.namespace<string>("latency");
      const sets: number[] = [];
      const gets: number[] = [];
      for (let i = 0; i < ops; i++) {
        const t0 = performance.now();
        await kv.set(`k${i}`, "value");
        sets.push(performance.now() - t0);
      }
      for (let i = 0; i < ops; i++) {
        const t0 = performance.now();
        await kv.get(`k${i}`);
        gets.push(performance.now() - t0);
      }
      out.push({ backend: name, setMs: median(sets), getMs: median(gets) });
    } finally {
      await store.close();
      backend.cleanup();
    }
  }
  return out;
}
