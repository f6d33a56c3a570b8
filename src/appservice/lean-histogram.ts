import type { Registry } from "prom-client";

/** One label value's buckets. `observe` is an array update: no label validation or hashing. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative count of observations <= each bound, as Prometheus exposes them. */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) out.push((acc += this.counts[i]!));
    return out;
  }
}

interface MetricValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A Prometheus histogram with one label, registered on a prom-client Registry like any
 * metric and exposed in the same text format. It exists because prom-client's
 * `labels(x).observe(v)` validates and hashes the labels on every call, which cost more than
 * the dispatcher's own work per event; here the caller keeps the series and observes into it.
 */
export class LabelledHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /** The series for one label value (created on first use; keep it, lookups are per call). */
  labels(value: string): HistogramSeries {
    let s = this.series.get(value);
    if (!s) this.series.set(value, (s = new HistogramSeries(this.bounds)));
    return s;
  }

  /** Starts timing; the returned function observes the seconds elapsed. */
  startTimer(value: string): () => void {
    const series = this.labels(value);
    const started = performance.now();
    return () => series.observe((performance.now() - started) / 1000);
  }

  /** What prom-client's Registry formats (the shape of its own Histogram's `get`). */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const [label, s] of this.series) {
      const cumulative = s.cumulative();
      this.bounds.forEach((le, i) =>
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { le, [this.labelName]: label },
          value: cumulative[i]!,
        }),
      );
      values.push(
        {
          metricName: `${this.name}_bucket`,
          labels: { le: "+Inf", [this.labelName]: label },
          value: s.count,
        },
        { metricName: `${this.name}_sum`, labels: { [this.labelName]: label }, value: s.sum },
        { metricName: `${this.name}_count`, labels: { [this.labelName]: label }, value: s.count },
      );
    }
    const { name, help, type, aggregator } = this;
    return Promise.resolve({ name, help, type, aggregator, values });
  }

  /** prom-client calls this on `registry.resetMetrics()`. */
  reset(): void {
    this.series.clear();
  }
}
