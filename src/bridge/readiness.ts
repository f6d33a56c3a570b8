import type { ReadinessResult } from "../appservice/app.js";
import type { KeyValue, Store } from "../store/store.js";

export interface ReadinessOptions {
  /** Whether the adapter's start resolved (and it was not stopped since). */
  adapterStarted: () => boolean;
  store: Store;
  /** A cheap request to the homeserver (GET /versions, no retries); rejects when unreachable. */
  homeserver: () => Promise<unknown>;
  /** How long a homeserver answer counts (default 5000 ms): probes never reach it more often. */
  homeserverIntervalMs?: number;
  /** How long the store and the homeserver may take to answer (default 3000 ms). */
  timeoutMs?: number;
}

/**
 * The Bridge's `/ready` checks: the adapter started, the store answers a read, the homeserver
 * answers `/versions` (checked at most once per interval; concurrent probes share a check).
 */
export class Readiness {
  private readonly probe: KeyValue<never>;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private homeserverCheck: { at: number; result: Promise<ReadinessResult> } | undefined;

  constructor(private readonly o: ReadinessOptions) {
    this.probe = o.store.namespace<never>("readiness");
    this.intervalMs = o.homeserverIntervalMs ?? 5000;
    this.timeoutMs = o.timeoutMs ?? 3000;
  }

  async check(): Promise<Record<string, ReadinessResult>> {
    const [store, homeserver] = await Promise.all([
      this.bounded("store", () => this.probe.get("probe")),
      this.homeserver(),
    ]);
    const adapter: ReadinessResult = this.o.adapterStarted()
      ? { ok: true }
      : { ok: false, error: "the adapter has not started" };
    return { adapter, store, homeserver };
  }

  private homeserver(): Promise<ReadinessResult> {
    const now = Date.now();
    if (this.homeserverCheck === undefined || now - this.homeserverCheck.at >= this.intervalMs) {
      this.homeserverCheck = { at: now, result: this.bounded("homeserver", this.o.homeserver) };
    }
    return this.homeserverCheck.result;
  }

  private async bounded(what: string, fn: () => Promise<unknown>): Promise<ReadinessResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ReadinessResult>((resolve) => {
      timer = setTimeout(
        () => resolve({ ok: false, error: `the ${what} did not answer within ${this.timeoutMs} ms` }),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([
        fn().then(
          (): ReadinessResult => ({ ok: true }),
          (err: unknown): ReadinessResult => ({
            ok: false,
            error: `the ${what} failed: ${(err as Error).message}`,
          }),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
