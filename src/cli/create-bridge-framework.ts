/**
 * Where the new project gets matrix-bridgekit from.
 *
 * - Installed from npm (this file is under node_modules): `^<running version>`.
 * - Run from a git checkout (src/ and tsconfig.build.json present): the checkout is packed
 *   with `npm pack` (which runs `prepare`, i.e. builds dist/) and the tarball is copied into
 *   the project as `vendor/matrix-bridgekit-<version>.tgz`, referenced as
 *   `file:./vendor/<tarball>`. A tarball (not a `file:` folder link) gives the project its own
 *   copy with its own dependencies, exactly what a registry install would give, and the
 *   project keeps working if the checkout moves or changes.
 * - `--framework SPEC` overrides both.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The root of this package (two folders up from src/cli or dist/cli). */
export const FRAMEWORK_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface FrameworkPackage {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

export async function readFrameworkPackage(root = FRAMEWORK_ROOT): Promise<FrameworkPackage> {
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as Partial<FrameworkPackage>;
  if (typeof pkg.name !== "string" || typeof pkg.version !== "string") {
    throw new Error(`${join(root, "package.json")} has no name or version`);
  }
  return {
    name: pkg.name,
    version: pkg.version,
    dependencies: pkg.dependencies ?? {},
    devDependencies: pkg.devDependencies ?? {},
  };
}

/** True when `root` is a source checkout rather than an installed package. */
export function isCheckout(root = FRAMEWORK_ROOT): boolean {
  return (
    !root.split(sep).includes("node_modules") &&
    existsSync(join(root, "src", "index.ts")) &&
    existsSync(join(root, "tsconfig.build.json"))
  );
}

/** The last `max` characters of a process's output, for an error message. */
function tail(text: string, max = 2000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

/** Runs a command; resolves with its output, rejects naming the command and its output's tail. */
export function run(
  command: string,
  args: string[],
  opts: { cwd: string; onOutput?: (chunk: string) => void },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output = tail(output + text, 20_000);
      opts.onOutput?.(text);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", (err) => reject(new Error(`could not run ${command}: ${err.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new Error(
            `${command} ${args.join(" ")} (in ${opts.cwd}) failed with ${signal ?? `exit code ${code}`}:\n${tail(output)}`,
          ),
        );
    });
  });
}

/**
 * Packs the checkout at `root` with `npm pack` into a fresh temporary folder; returns the
 * tarball's path. The caller copies it and removes the folder (`dirname(path)`).
 */
export async function packCheckout(root = FRAMEWORK_ROOT): Promise<string> {
  const dest = await mkdtemp(join(tmpdir(), "create-bridge-pack-"));
  try {
    await run("npm", ["pack", "--pack-destination", dest, "--loglevel", "warn"], { cwd: root });
    const tarballs = (await readdir(dest)).filter((f) => f.endsWith(".tgz"));
    if (tarballs.length !== 1) {
      throw new Error(`npm pack in ${root} made ${tarballs.length} tarballs in ${dest}, expected 1`);
    }
    return join(dest, tarballs[0]!);
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    throw err;
  }
}
