/** One thing wrong with an input: where (a dotted key path) and what. */
export interface Problem {
  /** Dotted key path, e.g. `namespaces.users[0].regex`; "" for the document itself. */
  path: string;
  message: string;
}

/**
 * Thrown when a file or object does not validate. Carries every problem found, not only
 * the first, so one run shows the whole list. The message names the file and each key path.
 */
export class ValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(
    /** The file the input came from, or a label such as "registration" when there is no file. */
    readonly source: string,
    readonly problems: readonly Problem[],
  ) {
    super(formatProblems(source, problems));
  }
}

export function formatProblems(source: string, problems: readonly Problem[]): string {
  const lines = problems.map((p) => `  ${source}: ${p.path === "" ? "(document)" : p.path}: ${p.message}`);
  return `${source} is not valid (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`;
}

/**
 * A short, safe rendering of a value for an error message: never the whole of a long string,
 * and never the password of a URL (`postgres://user:secret@host` shows as `user:***@host`).
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "missing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") {
    const safe = value.replace(/(\/\/[^/@:\s]*:)[^@/\s]*@/g, "$1***@");
    return safe.length > 40 ? `"${safe.slice(0, 40)}…"` : JSON.stringify(safe);
  }
  if (typeof value === "object") return "an object";
  return typeof value === "number" || typeof value === "boolean" ? `${typeof value} ${value}` : typeof value;
}
