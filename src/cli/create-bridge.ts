/**
 * create-bridge <dir>: scaffolds a new bridge project from templates/bridge. See
 * docs/create-bridge.md. The steps, in an order that writes nothing until every answer is
 * known and checked: parse flags -> check the target folder -> ask (terminal) or take flags
 * and defaults -> render every template file -> pack the framework (from a checkout) ->
 * write the files -> optionally npm install.
 */
import { copyFile, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { UsageError } from "./command.js";
import {
  answersWithoutPrompts,
  parseCreateBridgeArgs,
  USAGE,
  type CreateBridgeArgs,
  type ProjectAnswers,
} from "./create-bridge-options.js";
import { askAnswers, PromptAborted } from "./create-bridge-prompts.js";
import {
  FRAMEWORK_ROOT,
  isCheckout,
  packCheckout,
  readFrameworkPackage,
  run,
} from "./create-bridge-framework.js";
import { renderTemplate, TEMPLATES_DIR, type RenderedFile } from "./create-bridge-render.js";

/** Where create-bridge reads and writes; tests give streams and a folder. */
export interface CreateBridgeIO {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable;
  stderr: Writable;
  cwd: string;
  /** The framework checkout or package to take templates and the version from (tests). */
  frameworkRoot?: string;
  templatesDir?: string;
}

/** Thrown for a target folder create-bridge must not write into. Exit code 1. */
export class TargetError extends Error {
  override readonly name = "TargetError";
}

const TEMPLATE = "bridge";

/** Runs create-bridge and returns the exit code: 0 done, 1 failed, 2 usage error, 130 aborted. */
export async function main(argv: string[], io?: Partial<CreateBridgeIO>): Promise<number> {
  const full: CreateBridgeIO = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    ...io,
  };
  const err = (text: string) => full.stderr.write(`${text}\n`);
  try {
    const args = parseCreateBridgeArgs(argv);
    if (args.help) {
      full.stdout.write(`${USAGE}\n`);
      return 0;
    }
    await createBridge(args, full);
    return 0;
  } catch (e) {
    if (
      e instanceof UsageError ||
      (e instanceof Error && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
    ) {
      err(`create-bridge: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof PromptAborted) {
      err(`create-bridge: ${e.message}; nothing was written`);
      return 130;
    }
    err(
      `create-bridge: ${e instanceof TargetError ? e.message : e instanceof Error ? e.message : String(e)}`,
    );
    return 1;
  }
}

/** Entries of `dir`, or null if it does not exist. Throws TargetError if it is not a folder. */
async function folderEntries(dir: string): Promise<string[] | null> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new TargetError(`${dir} exists and is not a folder`);
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** The values templates may use: the answers and the versions the project depends on. */
export function templateVariables(
  answers: ProjectAnswers,
  frameworkSpec: string,
  framework: {
    version: string;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  },
): Record<string, string> {
  const version = (name: string, fallback: string) =>
    framework.devDependencies[name] ?? framework.dependencies[name] ?? fallback;
  return {
    ...answers,
    frameworkSpec,
    frameworkVersion: framework.version,
    typescriptVersion: version("typescript", "5.9.3"),
    typesNodeVersion: version("@types/node", "20.19.43"),
    tsxVersion: version("tsx", "4.23.15"),
  };
}

export async function createBridge(args: CreateBridgeArgs, io: CreateBridgeIO): Promise<void> {
  const out = (text: string) => io.stdout.write(`${text}\n`);
  const target = resolve(io.cwd, args.dir);
  const rel = relative(io.cwd, target);
  const shown = rel === "" ? "." : rel.startsWith("..") ? target : rel;

  const entries = await folderEntries(target);
  if (entries !== null && entries.length > 0 && !args.force) {
    const list = entries.slice(0, 5).join(", ") + (entries.length > 5 ? ", ..." : "");
    throw new TargetError(
      `${shown} is not empty (${entries.length} entries: ${list}). Choose a new folder, or pass --force to write ` +
        `into it (files of the same name are overwritten; nothing else is touched).`,
    );
  }

  const answers =
    io.stdin.isTTY === true && !args.yes
      ? await askAnswers(target, args.given, io.stdin, io.stdout)
      : answersWithoutPrompts({ ...args, dir: target });

  const root = io.frameworkRoot ?? FRAMEWORK_ROOT;
  const framework = await readFrameworkPackage(root);
  const fromCheckout = args.framework === undefined && isCheckout(root);
  const templateDir = join(io.templatesDir ?? TEMPLATES_DIR, TEMPLATE);
  let tarball: string | undefined;
  if (fromCheckout) {
    out(`Packing matrix-bridgekit from the checkout at ${root} (npm pack; builds dist/)...`);
    tarball = await packCheckout(root);
  }
  try {
    const vendored = tarball === undefined ? undefined : `vendor/${basename(tarball)}`;
    const spec = args.framework ?? (vendored !== undefined ? `file:./${vendored}` : `^${framework.version}`);
    const files = await renderTemplate(templateDir, templateVariables(answers, spec, framework));
    out(`Creating ${answers.name} in ${shown}: copying ${files.length} files`);
    await writeFiles(target, files, (path) => out(`  + ${path}`));
    if (tarball !== undefined && vendored !== undefined) {
      await mkdir(join(target, "vendor"), { recursive: true });
      await copyFile(tarball, join(target, vendored));
      out(`  + ${vendored} (matrix-bridgekit, packed from the checkout)`);
    }
  } finally {
    if (tarball !== undefined) await rm(dirname(tarball), { recursive: true, force: true });
  }

  if (args.install) {
    out(
      "Running npm install (the first install may build better-sqlite3 from source: this can take minutes)...",
    );
    await run("npm", ["install", "--no-audit", "--no-fund"], {
      cwd: target,
      onOutput: (chunk) => io.stdout.write(chunk),
    });
    out("npm install done.");
  }

  out(
    [
      "",
      `Done: ${answers.name}, a bridge for "${answers.network}" with ghosts @${answers.prefix}<id>:${answers.domain}.`,
      "Next steps (see its README.md):",
      `  cd ${shown}`,
      ...(args.install ? [] : ["  npm install"]),
      "  npm test                        # the adapter through a real Bridge and a fake homeserver",
      "  cp config.example.yaml config.yaml",
      "  npm run generate-registration   # then add registration.yaml to the homeserver and restart it",
      "  npm start",
    ].join("\n"),
  );
}

async function writeFiles(
  target: string,
  files: RenderedFile[],
  progress: (path: string) => void,
): Promise<void> {
  for (const file of files) {
    const dest = join(target, ...file.path.split("/"));
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, file.content);
    progress(file.path);
  }
}
