import { describeValue, ValidationError, type Problem } from "../common/validation-error.js";
import { compileNamespaceRegex } from "./regex.js";
import { NAMESPACE_KINDS, type NamespaceEntry, type Registration } from "./types.js";

const BOOLEAN_KEYS = [
  "rate_limited",
  "receive_ephemeral",
  "de.sorunome.msc2409.push_ephemeral",
  "org.matrix.msc3202",
  "io.element.msc4190",
] as const;

/** Characters Python's `urllib.parse.quote` leaves alone; Synapse requires sender_localpart to be made of them. */
const URL_SAFE = /^[A-Za-z0-9_.~/-]+$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks a parsed registration document against what Synapse enforces (and a little more:
 * empty tokens, identical tokens). Returns every problem found; an empty list means valid.
 * Pure: no I/O.
 */
export function validateRegistration(doc: unknown): Problem[] {
  const problems: Problem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  if (!isObject(doc)) {
    problem("", `must be a mapping of keys to values, got ${describeValue(doc)}`);
    return problems;
  }

  for (const key of ["id", "as_token", "hs_token", "sender_localpart"] as const) {
    const value = doc[key];
    if (value === undefined) problem(key, "is required");
    else if (typeof value !== "string") problem(key, `must be a string, got ${describeValue(value)}`);
    else if (value === "") problem(key, "must not be empty");
  }
  if (typeof doc.id === "string" && doc.id.includes("|")) {
    problem("id", `must not contain "|" (Synapse refuses it), got ${describeValue(doc.id)}`);
  }
  if (typeof doc.as_token === "string" && doc.as_token !== "" && doc.as_token === doc.hs_token) {
    problem("hs_token", "must differ from as_token (one secret must not open both directions)");
  }
  if (
    typeof doc.sender_localpart === "string" &&
    doc.sender_localpart !== "" &&
    !URL_SAFE.test(doc.sender_localpart)
  ) {
    problem(
      "sender_localpart",
      `must be URL-safe (letters, digits, "_.~/-"), got ${describeValue(doc.sender_localpart)}`,
    );
  }

  if (!("url" in doc))
    problem("url", "is required (use `url: null` for a service the homeserver never pushes to)");
  else if (doc.url !== null && typeof doc.url !== "string") {
    problem("url", `must be a string or null, got ${describeValue(doc.url)}`);
  } else if (typeof doc.url === "string" && !URL.canParse(doc.url)) {
    problem("url", `must be an absolute URL such as http://127.0.0.1:9000, got ${describeValue(doc.url)}`);
  }

  validateNamespaces(doc.namespaces, problem);

  if (doc.protocols !== undefined) {
    if (!Array.isArray(doc.protocols))
      problem("protocols", `must be a list of strings, got ${describeValue(doc.protocols)}`);
    else
      doc.protocols.forEach((p, i) => {
        if (typeof p !== "string" || p === "")
          problem(`protocols[${i}]`, `must be a non-empty string, got ${describeValue(p)}`);
      });
  }
  for (const key of BOOLEAN_KEYS) {
    if (doc[key] !== undefined && typeof doc[key] !== "boolean") {
      problem(key, `must be true or false, got ${describeValue(doc[key])}`);
    }
  }
  return problems;
}

function validateNamespaces(namespaces: unknown, problem: (path: string, message: string) => void): void {
  if (namespaces === undefined) {
    problem("namespaces", "is required (a mapping with users, aliases and rooms lists)");
    return;
  }
  if (!isObject(namespaces)) {
    problem(
      "namespaces",
      `must be a mapping with users, aliases and rooms lists, got ${describeValue(namespaces)}`,
    );
    return;
  }
  for (const kind of NAMESPACE_KINDS) {
    const list = namespaces[kind];
    if (list === undefined || list === null) continue; // Synapse treats a missing list as empty
    if (!Array.isArray(list)) {
      problem(`namespaces.${kind}`, `must be a list, got ${describeValue(list)}`);
      continue;
    }
    list.forEach((entry: unknown, i) => {
      const at = `namespaces.${kind}[${i}]`;
      if (!isObject(entry)) {
        problem(at, `must be a mapping with regex and exclusive, got ${describeValue(entry)}`);
        return;
      }
      if (typeof entry.regex !== "string")
        problem(`${at}.regex`, `must be a string, got ${describeValue(entry.regex)}`);
      else {
        try {
          compileNamespaceRegex(entry.regex);
        } catch (err) {
          problem(`${at}.regex`, `does not compile: ${(err as Error).message}`);
        }
      }
      if (typeof entry.exclusive !== "boolean") {
        problem(`${at}.exclusive`, `must be true or false, got ${describeValue(entry.exclusive)}`);
      }
    });
  }
}

/**
 * Validates and returns the document as a Registration: the same object, with absent
 * namespace lists filled in as empty. Throws ValidationError naming `source` and every problem.
 */
export function parseRegistration(doc: unknown, source = "registration"): Registration {
  const problems = validateRegistration(doc);
  if (problems.length > 0) throw new ValidationError(source, problems);
  const reg = doc as Registration;
  for (const kind of NAMESPACE_KINDS) reg.namespaces[kind] ??= [] as NamespaceEntry[];
  return reg;
}
