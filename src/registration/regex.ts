/**
 * Registration regexes are written for the homeserver, which for Synapse means Python's `re`.
 * This translates the few Python-only spellings that have a JavaScript equivalent and
 * compiles the result anchored at the start only, the way Python's `re.match` matches:
 * `@irc_.*` matches `@irc_alice:example.org`, and so does `@irc_` (no end anchor).
 */

/** Rewrites Python-only syntax: `(?P<name>`, `(?P=name)`, `\A`, `\Z`. */
export function translatePythonRegex(source: string): string {
  let out = "";
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "\\" && i + 1 < source.length) {
      const next = source[i + 1];
      if (next === "A") out += "^";
      else if (next === "Z") out += "$(?![\\s\\S])";
      else out += ch + next;
      i++;
      continue;
    }
    if (source.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    const backref = /^\(\?P=(\w+)\)/.exec(source.slice(i));
    if (backref) {
      out += `\\k<${backref[1]}>`;
      i += backref[0].length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

/** Compiles a registration regex with `re.match` semantics. Throws SyntaxError if invalid. */
export function compileNamespaceRegex(source: string): RegExp {
  return new RegExp(`^(?:${translatePythonRegex(source)})`);
}
