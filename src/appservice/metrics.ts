import { Counter, Gauge, Registry } from "prom-client";
import { LabelledHistogram } from "./lean-histogram.js";

/** The application service's Prometheus metrics, on a registry of its own. */
export class AppserviceMetrics {
  readonly registry = new Registry();
  /** Transactions by outcome: recorded, duplicate, failed, rejected, busy, full. */
  readonly transactions = new Counter({
    name: "bridgekit_appservice_transactions_total",
    help: "Transactions pushed by the homeserver, by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  /** Items handed to handlers by kind: message, state, ephemeral, to_device, device_lists, key_counts. */
  readonly events = new Counter({
    name: "bridgekit_appservice_events_total",
    help: "Events and other transaction data delivered to handlers, by kind",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  /** Handler failures by handler and reason (error or timeout). */
  readonly errors = new Counter({
    name: "bridgekit_appservice_handler_errors_total",
    help: "Handler calls that failed or timed out",
    labelNames: ["handler", "reason"] as const,
    registers: [this.registry],
  });
  /** Items that failed and will be tried again. */
  readonly retries = new Counter({
    name: "bridgekit_inbox_retries_total",
    help: "Handler calls that failed and were scheduled to be tried again",
    registers: [this.registry],
  });
  /** Items given up on, by reason: permanent, exhausted, unsupported. */
  readonly deadLetters = new Counter({
    name: "bridgekit_inbox_dead_letters_total",
    help: "Items stored as dead letters, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Transactions refused because the inbox was full. */
  readonly inboxFull = new Counter({
    name: "bridgekit_inbox_full_total",
    help: "Transactions refused with 503 because the inbox was full",
    registers: [this.registry],
  });
  /** Observed once per handler call, so a lean histogram (see LabelledHistogram). */
  readonly handlerSeconds = new LabelledHistogram(
    "bridgekit_appservice_handler_duration_seconds",
    "Time handlers took, by handler",
    "handler",
    [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30],
    this.registry,
  );
  /** HTTP responses by route name and status code. */
  readonly responses = new Counter({
    name: "bridgekit_appservice_http_responses_total",
    help: "HTTP responses, by route and status",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });

  // Counter children by label values, looked up once: prom-client hashes the labels on every
  // labelled inc, a cost paid per request and per room task.
  private readonly children = new Map<Counter<string>, Map<string, { inc(n?: number): void }>>();

  private child(counter: Counter<string>, ...values: string[]): { inc(n?: number): void } {
    let byValues = this.children.get(counter);
    if (!byValues) this.children.set(counter, (byValues = new Map<string, { inc(n?: number): void }>()));
    const key = values.join(" ");
    let child = byValues.get(key);
    if (!child) byValues.set(key, (child = counter.labels(...values)));
    return child;
  }

  /** Counts a transaction by outcome. */
  countTransaction(outcome: string): void {
    this.child(this.transactions, outcome).inc();
  }

  /** Counts a response by route name and status code. */
  countResponse(route: string, status: number): void {
    this.child(this.responses, route, String(status)).inc();
  }

  /** Counts items handed to handlers, by kind. */
  countEvents(kind: string, count: number): void {
    this.child(this.events, kind).inc(count);
  }

  /** The gauges read their value when scraped, from these. */
  constructor(
    queueDepth: () => number,
    inFlight: () => number,
    inbox: { pendingItems: () => number; waitingRetry: () => number } = {
      pendingItems: () => 0,
      waitingRetry: () => 0,
    },
  ) {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge(
      "bridgekit_inbox_pending_items",
      "Items recorded in the inbox and not yet handled",
      inbox.pendingItems,
    );
    gauge(
      "bridgekit_inbox_rooms_waiting_retry",
      "Rooms (lanes) waiting to try a failed item again",
      inbox.waitingRetry,
    );
    gauge(
      "bridgekit_appservice_queue_depth",
      "Handler calls waiting for or holding a concurrency slot (at most one per room at a time)",
      queueDepth,
    );
    gauge("bridgekit_appservice_transactions_in_flight", "Transactions being recorded", inFlight);
  }
}
