import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ResponseInfo } from "../client/types.js";
import type { Logger } from "../common/logger.js";
import type { Outbox } from "../store/outbox.js";

/** An outbox, named for the `queue` label. */
export interface NamedOutbox {
  queue: string;
  outbox: Pick<Outbox, "stats">;
}

/**
 * The Bridge's own metrics, on the appservice's registry so one /metrics shows everything:
 * the outboxes (remote -> Matrix) and the requests the bridge makes to the homeserver.
 */
export class BridgeMetrics {
  private readonly requests: Counter<"method" | "endpoint" | "status">;
  private readonly duration: Histogram<"method" | "endpoint">;
  private readonly outboxDeadLetters: Counter<"queue">;
  // Children by label values, looked up once (prom-client hashes labels on every call).
  private readonly requestChildren = new Map<string, { inc(): void }>();
  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  constructor(registry: Registry, outboxes: NamedOutbox[], log: Logger) {
    this.requests = new Counter({
      name: "bridgekit_homeserver_requests_total",
      help: "HTTP requests to the homeserver (each retry counts), by method, endpoint and status (error: no answer)",
      labelNames: ["method", "endpoint", "status"] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "bridgekit_homeserver_request_duration_seconds",
      help: "Time from sending a request to the homeserver to reading its answer, by method and endpoint",
      labelNames: ["method", "endpoint"] as const,
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [registry],
    });
    this.outboxDeadLetters = new Counter({
      name: "bridgekit_outbox_dead_letters_total",
      help: "Outbox items the homeserver refused for good, moved to the outbox's dead letters",
      labelNames: ["queue"] as const,
      registers: [registry],
    });
    // Both gauges read every outbox once per scrape; a store error leaves the last values.
    let stats:
      Promise<Array<{ queue: string; items: number; oldestEnqueuedAt: number | undefined }>> | undefined;
    const read = () =>
      (stats ??= Promise.all(
        outboxes.map(async ({ queue, outbox }) => ({ queue, ...(await outbox.stats()) })),
      ).finally(() => setImmediate(() => (stats = undefined))));
    const gauge = (
      name: string,
      help: string,
      value: (s: { items: number; oldestEnqueuedAt: number | undefined }) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ["queue"] as const,
        registers: [registry],
        async collect() {
          try {
            for (const s of await read()) this.set({ queue: s.queue }, value(s));
          } catch (err) {
            log.warn({ err }, "could not read the outbox for metrics");
          }
        },
      });
    gauge("bridgekit_outbox_items", "Items waiting in the outbox to reach the homeserver", (s) => s.items);
    gauge(
      "bridgekit_outbox_oldest_item_age_seconds",
      "Age of the oldest item waiting in the outbox (0 when empty)",
      (s) => (s.oldestEnqueuedAt === undefined ? 0 : Math.max(0, (Date.now() - s.oldestEnqueuedAt) / 1000)),
    );
    for (const { queue } of outboxes) this.outboxDeadLetters.labels(queue).inc(0);
  }

  /** One homeserver request attempt answered (or not). */
  observeResponse(info: ResponseInfo): void {
    const status = info.status === undefined ? "error" : String(info.status);
    const key = `${info.method} ${info.endpoint}`;
    let counter = this.requestChildren.get(`${key} ${status}`);
    if (!counter) {
      counter = this.requests.labels(info.method, info.endpoint, status);
      this.requestChildren.set(`${key} ${status}`, counter);
    }
    counter.inc();
    let histogram = this.durationChildren.get(key);
    if (!histogram) {
      histogram = this.duration.labels(info.method, info.endpoint);
      this.durationChildren.set(key, histogram);
    }
    histogram.observe(info.seconds);
  }

  /** An outbox item was moved to the dead letters. */
  countOutboxDeadLetter(queue: string): void {
    this.outboxDeadLetters.labels(queue).inc();
  }
}
