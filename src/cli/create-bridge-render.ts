/**
 * Template rendering for create-bridge. A template is a folder (templates/bridge); every file
 * in it becomes a file of the new project, with `{{variable}}` replaced everywhere, and two
 * name rules so that the template folder is neither a package nor loses files to `npm pack`:
 *
 * - a trailing `.tmpl` is dropped (`package.json.tmpl` -> `package.json`);
 * - a leading `_` becomes `.` (`_gitignore` -> `.gitignore`; npm pack leaves out .gitignore).
 */
import { readdir, readFile } from "node:fs/promises";
import { join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** templates/ of this package: two folders up from src/cli or dist/cli. */
export const TEMPLATES_DIR = fileURLToPath(new URL("../../templates/", import.meta.url));

/** One file of the new project. */
export interface RenderedFile {
  /** Path in the template folder, with `/` separators. */
  source: string;
  /** Path in the new project, with `/` separators. */
  path: string;
  content: string;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;

/** The project path of a template path: `.tmpl` dropped, leading `_` made `.`, per segment. */
export function outputPath(templatePath: string): string {
  return templatePath
    .split("/")
    .map((segment) => segment.replace(/\.tmpl$/, "").replace(/^_/, "."))
    .join("/");
}

/**
 * Replaces every `{{name}}` in `text`. Throws an Error naming `file` and the variable when
 * the template uses one not in `vars` (a typo in a template must not ship as `{{netwrk}}`),
 * and when a `{{` is left over after rendering.
 */
export function renderText(text: string, vars: Readonly<Record<string, string>>, file: string): string {
  const out = text.replace(PLACEHOLDER, (whole, name: string) => {
    if (!Object.hasOwn(vars, name)) {
      throw new Error(`template ${file}: unknown variable ${whole} (known: ${Object.keys(vars).join(", ")})`);
    }
    return vars[name]!;
  });
  const left = out.indexOf("{{");
  if (left >= 0) {
    const line = out.slice(0, left).split("\n").length;
    throw new Error(`template ${file}:${line}: "{{" left after rendering: ${out.slice(left, left + 30)}`);
  }
  return out;
}

/** Every file under `dir`, as `/`-separated relative paths, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join(posix.sep))
    .sort();
}

/** Reads and renders every file of a template folder. Throws before anything is written. */
export async function renderTemplate(
  templateDir: string,
  vars: Readonly<Record<string, string>>,
): Promise<RenderedFile[]> {
  const files = await listFiles(templateDir);
  if (files.length === 0) throw new Error(`template folder ${templateDir} has no files`);
  const out: RenderedFile[] = [];
  const seen = new Set<string>();
  for (const source of files) {
    const path = outputPath(source);
    if (seen.has(path)) throw new Error(`template ${templateDir}: two files become ${path}`);
    seen.add(path);
    const text = await readFile(join(templateDir, source), "utf8");
    out.push({ source, path, content: renderText(text, vars, source) });
  }
  return out;
}
