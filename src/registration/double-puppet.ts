import type { Problem } from "../common/validation-error.js";
import { IdTemplate } from "./localpart.js";
import { compileNamespaceRegex } from "./regex.js";
import type { Registration } from "./types.js";

/**
 * A double-puppet registration is a second application service on the homeserver whose only
 * use is its as_token: with `?user_id=` it acts as a real user of the homeserver, so a
 * message that user sent from another client of the remote network appears in Matrix as
 * the user themselves. It has `url: null` (the homeserver pushes nothing to it) and a
 * non-exclusive users namespace covering every local user. One such registration can serve
 * every bridge on a homeserver.
 */

/** The users-namespace regex covering every user of a homeserver, e.g. `@.*:example\.org`. */
export function localUsersRegexSource(domain: string): string {
  return new IdTemplate("{id}", domain).userRegexSource();
}

/** Local user ids a double-puppet namespace must cover: plain, punctuated, a digit. */
const SAMPLE_LOCALPARTS = ["alice", "bob.smith_2", "x=y-z/w", "0"];

export interface DoublePuppetCheckOptions {
  /** The homeserver's server name. */
  domain: string;
  /** The bridge's own registration: the double-puppet one must not share its id or tokens. */
  main?: Registration;
  /** How to name the main registration in messages (its file). Default "the main registration". */
  mainSource?: string;
}

/**
 * What makes a registration (one that passed validateRegistration) unfit for double puppeting: a url (the homeserver would
 * push to it), an exclusive users entry (it would take the real users' ids from them), a
 * users namespace that does not cover the homeserver's users, or an id or token shared with
 * the bridge's own registration. Returns every problem, by key path; empty means fit. Pure.
 */
export function checkDoublePuppetRegistration(
  registration: Registration,
  opts: DoublePuppetCheckOptions,
): Problem[] {
  const problems: Problem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  if (registration.url !== null) {
    problem("url", "must be null: the homeserver must push nothing to a double-puppet registration");
  }
  registration.namespaces.users.forEach((entry, i) => {
    if (entry.exclusive) {
      problem(
        `namespaces.users[${i}].exclusive`,
        "must be false: an exclusive namespace would take the real users' ids away from them",
      );
    }
  });
  const covering = registration.namespaces.users.filter((e) => !e.exclusive);
  const uncovered = SAMPLE_LOCALPARTS.map((l) => `@${l}:${opts.domain}`).filter(
    (userId) => !covering.some((e) => compileNamespaceRegex(e.regex).test(userId)),
  );
  if (uncovered.length > 0) {
    problem(
      "namespaces.users",
      `must cover every user of ${opts.domain} with a non-exclusive entry, but ${uncovered[0]} is outside it ` +
        `(use regex "${localUsersRegexSource(opts.domain)}", exclusive: false)`,
    );
  }
  const main = opts.main;
  if (main !== undefined) {
    const mainSource = opts.mainSource ?? "the main registration";
    if (registration.id === main.id) {
      problem("id", `must differ from the id of ${mainSource} (the homeserver refuses two with one id)`);
    }
    const mainTokens = new Set([main.as_token, main.hs_token]);
    for (const key of ["as_token", "hs_token"] as const) {
      if (mainTokens.has(registration[key])) {
        problem(key, `must differ from the tokens of ${mainSource} (each secret opens one door)`);
      }
    }
  }
  return problems;
}
