import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { dump, load, YAMLException } from "js-yaml";
import { ValidationError } from "./validation-error.js";

/**
 * Reads and parses a YAML file. A missing file or a syntax error becomes a ValidationError
 * that names the file (and the line, for syntax errors).
 */
export async function readYamlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : `cannot read (${code ?? (err as Error).message})`;
    throw new ValidationError(path, [{ path: "", message: why }]);
  }
  try {
    return load(text);
  } catch (err) {
    if (err instanceof YAMLException) {
      // err.message quotes the lines around the error: tokens, or a whole huge line. Only say where.
      const where = err.mark ? ` at line ${err.mark.line + 1}, column ${err.mark.column + 1}` : "";
      const reason = (err.reason || "unreadable").slice(0, 200);
      throw new ValidationError(path, [{ path: "", message: `YAML syntax error${where}: ${reason}` }]);
    }
    throw err;
  }
}

/**
 * Writes `data` as YAML, atomically (temporary file + rename), with the given file mode.
 * The mode is applied to the temporary file before any secret is written into it.
 */
export async function writeYamlFile(path: string, data: unknown, mode = 0o600, header = ""): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  await writeFile(tmp, "", { mode });
  await chmod(tmp, mode); // the umask may have narrowed or widened the mode on create
  await writeFile(tmp, header + dump(data, { lineWidth: -1, noRefs: true }), "utf8");
  await rename(tmp, path);
}
