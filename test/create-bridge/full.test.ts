/**
 * The whole create-bridge path, as a user meets it: the real bin, without a terminal, packs
 * this checkout into the new project, runs `npm install` (--install), and the generated
 * project type-checks, passes its own tests, builds, and its registration and config pass
 * `bridgekit validate`. Slow (npm install may build better-sqlite3 from source): run it with
 * `npm run test:create-bridge`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertBuilt, BIN, runCommand, tail } from "./support.js";

const MINUTES = 60_000;

describe("create-bridge, installed and tested for real", { timeout: 20 * MINUTES }, () => {
  let cwd: string;
  let project: string;
  before(async () => {
    assertBuilt();
    cwd = await mkdtemp(join(tmpdir(), "cb-full-"));
    project = join(cwd, "matrix-full-bridge");
  });
  after(async () => {
    // BRIDGEKIT_KEEP_TMP=1 keeps the project for a look after a failure.
    if (!process.env.BRIDGEKIT_KEEP_TMP) await rm(cwd, { recursive: true, force: true });
  });

  it("scaffolds with flags and --install, depending on a tarball of this checkout", async () => {
    const r = await runCommand(
      process.execPath,
      [
        BIN,
        "matrix-full-bridge",
        "--network",
        "full",
        "--prefix",
        "full_",
        "--homeserver-url",
        "http://127.0.0.1:8008",
        "--domain",
        "full.test",
        "--yes",
        "--install",
      ],
      { cwd },
    );
    assert.equal(r.code, 0, tail(r.output));
    assert.match(r.output, /Packing matrix-bridgekit from the checkout/);
    assert.match(r.output, /copying \d+ files/);
    assert.match(r.output, /Running npm install/);
    const pkg = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as {
      name: string;
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.name, "matrix-full-bridge");
    const spec = pkg.dependencies["matrix-bridgekit"] ?? "";
    assert.match(spec, /^file:\.\/vendor\/matrix-bridgekit-[\d.]+\.tgz$/);
    assert.ok(existsSync(join(project, spec.slice("file:".length))), "the tarball is in vendor/");
    // Installed as a copy (not a link to the checkout), with its bin and better-sqlite3's native module.
    const installed = join(project, "node_modules", "matrix-bridgekit");
    assert.ok(existsSync(join(installed, "dist", "index.js")), "the framework's dist/ is installed");
    assert.ok(
      existsSync(join(installed, "templates", "bridge", "_gitignore")),
      "templates ship in the package",
    );
    assert.ok(existsSync(join(project, "node_modules", ".bin", "bridgekit")), "the bridgekit bin is linked");
    const releaseDir = join(project, "node_modules", "better-sqlite3", "build", "Release");
    const release: string[] = existsSync(releaseDir) ? await readdir(releaseDir) : [];
    assert.ok(
      release.includes("better_sqlite3.node"),
      "better-sqlite3's native module is installed (allowScripts)",
    );
  });

  it("type-checks", async () => {
    const r = await runCommand("npm", ["run", "typecheck"], { cwd: project });
    assert.equal(r.code, 0, tail(r.output));
  });

  it("passes its own tests", async () => {
    const r = await runCommand("npm", ["test"], { cwd: project });
    assert.equal(r.code, 0, tail(r.output));
    const pass = Number(/^# pass (\d+)$/m.exec(r.output)?.[1] ?? 0);
    assert.ok(pass >= 10, `expected at least 10 passing tests, got ${pass}:\n${tail(r.output)}`);
    assert.match(r.output, /^# fail 0$/m);
    // The logins ran: through the bridge, and with LoginDriver from matrix-bridgekit/testing.
    assert.match(r.output, /^ok \d+ - matrix-full-bridge logins through the bridge$/m);
    assert.match(r.output, /^ok \d+ - matrix-full-bridge logins without a homeserver \(LoginDriver\)$/m);
  });

  it("builds, and its generated registration and config pass bridgekit validate", async () => {
    await copyFile(join(project, "config.example.yaml"), join(project, "config.yaml"));
    const reg = await runCommand("npm", ["run", "generate-registration"], { cwd: project });
    assert.equal(reg.code, 0, tail(reg.output));
    const registration = await readFile(join(project, "registration.yaml"), "utf8");
    assert.match(registration, /^id: full$/m);
    assert.match(registration, /sender_localpart: fullbot/);
    const validate = await runCommand("npm", ["run", "validate"], { cwd: project });
    assert.equal(validate.code, 0, tail(validate.output));
    assert.match(validate.output, /OK config\.yaml/);
    assert.ok(existsSync(join(project, "dist", "adapter.js")), "npm run build wrote dist/adapter.js");
  });
});
