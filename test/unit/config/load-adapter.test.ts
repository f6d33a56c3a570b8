import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import {
  AdapterLoadError,
  isPathSpec,
  loadAdapter,
  resolveAdapterModule,
  tsxLoaderActive,
} from "../../../src/adapter/load-adapter.js";
import { silentLogger } from "../../../src/common/logger.js";

const root = join(import.meta.dirname, "../../..");
const fixtures = join(import.meta.dirname, "../../fixtures/config");
const adapters = join(fixtures, "adapters");
const init = { config: {}, log: silentLogger() };

/** Asserts loading `spec` fails with an AdapterLoadError naming the spec, the path and `reason`. */
async function rejectsWith(
  spec: string,
  dir: string,
  path: string | undefined,
  reason: RegExp,
): Promise<void> {
  await assert.rejects(loadAdapter(spec, dir, init), (err: unknown) => {
    assert.ok(err instanceof AdapterLoadError, String(err));
    assert.equal(err.spec, spec);
    assert.equal(err.resolvedPath, path);
    assert.ok(err.message.startsWith(`adapter module "${spec}"`), err.message);
    if (path !== undefined) assert.ok(err.message.includes(`(${path})`), err.message);
    assert.match(err.message, reason);
    return true;
  });
}

describe("loadAdapter", () => {
  it("loads a .js file relative to the config folder and passes config, log and configDir", async () => {
    const log = silentLogger();
    const adapter = await loadAdapter("./adapters/good.js", fixtures, { config: { a: 1 }, log });
    assert.equal(adapter.name, "good");
    const seen = (adapter as unknown as { init: Record<string, unknown> }).init;
    assert.deepEqual(seen.config, { a: 1 });
    assert.equal(seen.log, log);
    assert.equal(seen.configDir, fixtures);
  });

  it("loads .ts files, absolute paths and file: URLs", async () => {
    const typed = await loadAdapter(join(adapters, "typed.ts"), "/", {
      config: { greeting: "hi" },
      log: silentLogger(),
    });
    assert.equal(typed.name, "typed:hi");
    const byUrl = await loadAdapter(pathToFileURL(join(adapters, "good.js")).href, "/", init);
    assert.equal(byUrl.name, "good");
  });

  it("compiles .ts adapters with tsx: parameter properties, enums, .js specifiers of .ts files", async () => {
    // The test runner runs under tsx (node --import tsx), so this is tsx's process-wide loader.
    assert.ok(tsxLoaderActive(), "the tests run under `node --import tsx`, and the loader must see it");
    const loud = await loadAdapter("./ts-only.ts", adapters, {
      config: { loud: true, greeting: "hey" },
      log: silentLogger(),
    });
    assert.equal(loud.name, "ts-only:loud:HEY!");
    assert.equal((await loadAdapter("./ts-only.ts", adapters, init)).name, "ts-only:quiet:hi");
  });

  describe("outside tsx (a plain `node`, as bin/bridgekit.js runs)", () => {
    let work: string;
    let loaderUrl: string;
    before(async () => {
      // This file's loader, compiled to JavaScript on its own (it imports only types from the
      // project), where `tsx/esm/api` resolves from the repository's node_modules.
      await mkdir(join(root, "node_modules", ".cache"), { recursive: true });
      work = await mkdtemp(join(root, "node_modules", ".cache", "bridgekit-load-adapter-"));
      const source = await readFile(join(root, "src", "adapter", "load-adapter.ts"), "utf8");
      const js = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      await writeFile(join(work, "load-adapter.mjs"), js);
      loaderUrl = pathToFileURL(join(work, "load-adapter.mjs")).href;
    });
    after(async () => {
      await rm(work, { recursive: true, force: true });
    });

    /** Runs `body` (an async function body given loadAdapter and tsxLoaderActive) in a plain node; its stdout. */
    function plainNode(body: string): string {
      const env = { ...process.env };
      delete env.NODE_OPTIONS;
      const script = [
        `const { loadAdapter, tsxLoaderActive } = await import(${JSON.stringify(loaderUrl)});`,
        `const init = { config: { loud: true, greeting: "hey" }, log: { info() {}, warn() {}, error() {}, debug() {} } };`,
        body,
      ].join("\n");
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        cwd: root,
        env,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
      return r.stdout;
    }

    it(`loads a .ts adapter that type stripping cannot run, on Node ${process.version}`, () => {
      const out = plainNode(
        [
          `console.log("tsx active:", tsxLoaderActive());`,
          `const adapter = await loadAdapter(${JSON.stringify(join(adapters, "ts-only.ts"))}, "/", init);`,
          `console.log("name:", adapter.name);`,
        ].join("\n"),
      );
      assert.match(out, /^tsx active: false$/m, "the child runs without tsx");
      assert.match(out, /^name: ts-only:loud:HEY!$/m);
    });

    it("names the spec and the path when a .ts file does not compile", async () => {
      const broken = join(work, "broken.ts");
      await writeFile(broken, "export default function create(: number) {}\n");
      const out = plainNode(
        [
          `try { await loadAdapter("./broken.ts", ${JSON.stringify(work)}, init); console.log("loaded"); }`,
          `catch (err) { console.log(err.name, "|", err.resolvedPath, "|", err.message); }`,
        ].join("\n"),
      );
      assert.ok(
        out.startsWith(`AdapterLoadError | ${broken} | adapter module "./broken.ts" (${broken}): `),
        out,
      );
      assert.match(out, /failed to import this \.ts file with tsx \(compile it to \.js, or run under tsx\)/);
    });
  });

  it("takes a named createAdapter export, and may await the factory", async () => {
    assert.equal((await loadAdapter("./named.js", adapters, init)).name, "named");
  });

  it("unwraps a CommonJS module compiled from `export default`", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bridgekit-cjs-"));
    try {
      // What TypeScript emits for `export default` with module: commonjs.
      await writeFile(
        join(dir, "adapter.cjs"),
        [
          '"use strict";',
          'Object.defineProperty(exports, "__esModule", { value: true });',
          'exports.default = () => ({ name: "commonjs", start: () => Promise.resolve(), stop: () => Promise.resolve() });',
        ].join("\n"),
      );
      assert.equal((await loadAdapter("./adapter.cjs", dir, init)).name, "commonjs");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("resolves folders through package.json exports, then main, then index", async () => {
    assert.equal((await loadAdapter("./folder-exports", adapters, init)).name, "folder-exports");
    assert.equal(
      await resolveAdapterModule("./folder-exports", adapters),
      join(adapters, "folder-exports", "lib", "entry.js"),
      "exports wins over main",
    );
    assert.equal((await loadAdapter("./folder-main", adapters, init)).name, "folder-main");
    assert.equal((await loadAdapter("./folder-index", adapters, init)).name, "folder-index");
  });

  it("tells paths from package names", () => {
    for (const spec of ["./a.js", "../a", ".", "/abs/a.js", "file:///a.js"])
      assert.ok(isPathSpec(spec), spec);
    for (const spec of ["irc-adapter", "@acme/irc", "@acme/bridges/irc", "adapter.js"]) {
      assert.ok(!isPathSpec(spec), spec);
    }
  });

  describe("package names", () => {
    let project: string;
    before(async () => {
      project = await mkdtemp(join(tmpdir(), "bridgekit-adapter-"));
      const pkg = join(project, "node_modules", "@acme", "irc-adapter");
      await mkdir(join(pkg, "dist"), { recursive: true });
      await writeFile(
        join(pkg, "package.json"),
        JSON.stringify({
          name: "@acme/irc-adapter",
          type: "module",
          exports: {
            ".": { require: "./dist/nope.cjs", import: "./dist/index.js" },
            "./alt": "./dist/alt.js",
          },
        }),
      );
      const body = (name: string) =>
        `export default () => ({ name: "${name}", start: () => Promise.resolve(), stop: () => Promise.resolve() });\n`;
      await writeFile(join(pkg, "dist", "index.js"), body("acme"));
      await writeFile(join(pkg, "dist", "alt.js"), body("acme-alt"));
      await mkdir(join(project, "deploy", "conf"), { recursive: true });
    });
    after(async () => {
      await rm(project, { recursive: true, force: true });
    });

    it("are found in node_modules from the config folder upward, with the import condition", async () => {
      const configDir = join(project, "deploy", "conf");
      assert.equal((await loadAdapter("@acme/irc-adapter", configDir, init)).name, "acme");
      assert.equal((await loadAdapter("@acme/irc-adapter/alt", configDir, init)).name, "acme-alt");
    });

    it("report a subpath the package does not export", async () => {
      const pkgJson = join(project, "node_modules", "@acme", "irc-adapter", "package.json");
      await rejectsWith("@acme/irc-adapter/secret", project, pkgJson, /"exports" has no "\.\/secret" entry/);
    });

    it("report a package that is not installed, naming where it looked", async () => {
      await rejectsWith(
        "irc-adapter-missing",
        project,
        join(project, "node_modules", "irc-adapter-missing"),
        /package "irc-adapter-missing" not found in node_modules of .* or any folder above it/,
      );
    });
  });

  describe("fails clearly when", () => {
    it("the file does not exist", async () => {
      await rejectsWith(
        "./adapters/nope.js",
        fixtures,
        join(fixtures, "adapters", "nope.js"),
        /: not found$/,
      );
    });

    it("the file is not a module", async () => {
      await rejectsWith(
        "./readme.txt",
        adapters,
        join(adapters, "readme.txt"),
        /must be a \.js or \.ts module/,
      );
    });

    it("a folder has no entry point", async () => {
      const dir = await mkdtemp(join(tmpdir(), "bridgekit-empty-"));
      try {
        await rejectsWith(".", dir, dir, /folder with no entry point/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("a package.json points nowhere", async () => {
      const dir = await mkdtemp(join(tmpdir(), "bridgekit-badpkg-"));
      try {
        await writeFile(join(dir, "package.json"), JSON.stringify({ main: "./missing.js" }));
        await rejectsWith(".", dir, join(dir, "missing.js"), /"main" points to no file/);
        await writeFile(join(dir, "package.json"), JSON.stringify({ exports: "./gone.js" }));
        await rejectsWith(".", dir, join(dir, "gone.js"), /"exports" points to a file that does not exist/);
        await writeFile(join(dir, "package.json"), "{ not json");
        await rejectsWith(".", dir, join(dir, "package.json"), /cannot read package\.json/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("the module does not import", async () => {
      const dir = await mkdtemp(join(tmpdir(), "bridgekit-syntax-"));
      try {
        await writeFile(join(dir, "broken.js"), "export default (;\n");
        await rejectsWith("./broken.js", dir, join(dir, "broken.js"), /failed to import: /);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("there is no default export", async () => {
      await rejectsWith(
        "./no-default.js",
        adapters,
        join(adapters, "no-default.js"),
        /has no default export and no createAdapter export/,
      );
    });

    it("the default export is not a function", async () => {
      await rejectsWith(
        "./not-function.js",
        adapters,
        join(adapters, "not-function.js"),
        /default export is not a function \(an AdapterFactory\), got an object/,
      );
    });

    it("the factory throws, keeping its message and the cause", async () => {
      await rejectsWith(
        "./throws.js",
        adapters,
        join(adapters, "throws.js"),
        /the adapter factory threw: adapter\.config\.server must be a host name$/,
      );
      await assert.rejects(
        loadAdapter("./throws.js", adapters, init),
        (err: Error) => err.cause instanceof Error,
      );
      const ok = await loadAdapter("./throws.js", adapters, {
        config: { server: "irc" },
        log: silentLogger(),
      });
      assert.equal(ok.name, "throws");
    });

    it("the result lacks name, start or stop, or has a capability that is not a function", async () => {
      await rejectsWith(
        "./bad-shape.js",
        adapters,
        join(adapters, "bad-shape.js"),
        /not an adapter: it lacks name \(a non-empty string\); lacks stop \(a function\); onMessage must be a function when present, got a string$/,
      );
    });

    it("the spec is empty", async () => {
      await rejectsWith("", adapters, undefined, /names no module/);
    });
  });
});
