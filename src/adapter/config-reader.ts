import { describeValue, ValidationError, type Problem } from "../common/validation-error.js";

/**
 * Reads an adapter's `adapter.config` section with the framework's error style: every problem
 * names the key and the value found (never a secret's value), and `done()` throws one
 * ValidationError listing them all. For use in an adapter factory:
 *
 *   const r = new AdapterConfigReader(init.config, { known: ["server", "port"], expect: "a mapping with server" });
 *   const server = r.string("server", { required: true });
 *   const port = r.integer("port", 6667, 1, 65535);
 *   r.done();
 */
export class AdapterConfigReader {
  /** The section as written. */
  readonly values: Record<string, unknown>;
  private readonly problems: Problem[] = [];
  private readonly source: string;

  constructor(
    raw: unknown,
    opts: {
      /** Every key the adapter reads; any other key is reported (typo protection). */
      known: readonly string[];
      /** What the section must be, for the error when it is not a mapping, e.g. "a mapping with server and nick". */
      expect: string;
      /** The error's source (default "adapter.config"). */
      source?: string;
    },
  ) {
    this.source = opts.source ?? "adapter.config";
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new ValidationError(this.source, [
        { path: "", message: `must be ${opts.expect}, got ${describeValue(raw)}` },
      ]);
    }
    this.values = raw as Record<string, unknown>;
    const known = new Set(opts.known);
    for (const key of Object.keys(this.values)) {
      if (!known.has(key)) this.problem(key, `unknown key (known: ${opts.known.join(", ")})`);
    }
  }

  /** Records a problem with a key (dotted path, e.g. `rooms[2]`). */
  problem(key: string, message: string): void {
    this.problems.push({ path: key, message });
  }

  /**
   * A non-empty, one-line string, or undefined when absent and not required (a problem when
   * required). A secret's value is never put in the message, only its type.
   */
  string(key: string, opts: { required?: boolean; secret?: boolean } = {}): string | undefined {
    const v = this.values[key];
    if (v === undefined && opts.required !== true) return undefined;
    if (typeof v !== "string" || v.trim() === "" || /[\r\n\0]/.test(v)) {
      this.problem(
        key,
        `must be a non-empty string on one line, got ${opts.secret === true ? typeof v : describeValue(v)}`,
      );
      return undefined;
    }
    return v;
  }

  /** true or false; `fallback` when absent (and when invalid, after recording the problem). */
  boolean(key: string, fallback: boolean): boolean;
  boolean(key: string): boolean | undefined;
  boolean(key: string, fallback?: boolean): boolean | undefined {
    const v = this.values[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") {
      this.problem(key, `must be true or false, got ${describeValue(v)}`);
      return fallback;
    }
    return v;
  }

  /** An integer from min to max; `fallback` when absent (and when invalid, after recording the problem). */
  integer(key: string, fallback: number, min: number, max: number): number {
    const v = this.values[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.problem(key, `must be an integer from ${min} to ${max}, got ${describeValue(v)}`);
      return fallback;
    }
    return v;
  }

  /** Throws a ValidationError listing every problem recorded, if any. */
  done(): void {
    if (this.problems.length > 0) throw new ValidationError(this.source, this.problems);
  }
}
