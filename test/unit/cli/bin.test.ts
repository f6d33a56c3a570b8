// The installed entry point: bin/bridgekit.js runs the compiled CLI in dist/ (built by
// `npm run build`, which `npm ci` runs). These tests run it as a user would, without tsx.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "../../..");
const bin = join(root, "bin", "bridgekit.js");

function bridgekit(...args: string[]) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no tsx: exactly what an installed bridge runs
  for (const name of Object.keys(env))
    if (name.startsWith("BRIDGEKIT_") && !name.startsWith("BRIDGEKIT_TEST_")) delete env[name];
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: "utf8", timeout: 60_000 });
}

describe("bin/bridgekit.js", () => {
  let dir: string;
  before(async () => {
    assert.ok(
      existsSync(join(root, "dist", "cli", "bridgekit.js")),
      "dist/cli/bridgekit.js is missing: run `npm run build` first (npm ci does it)",
    );
    dir = await mkdtemp(join(tmpdir(), "bridgekit-bin-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--help lists the commands and exits 0", () => {
    const r = bridgekit("--help");
    assert.equal(r.status, 0, r.stderr);
    for (const name of ["generate-registration", "validate"]) {
      assert.match(
        r.stdout,
        new RegExp(`^  ${name} `, "m"),
        `dist/ lacks ${name}: is it stale? run npm run build`,
      );
    }
  });

  it("exits 2 on a usage error", () => {
    const r = bridgekit("generate-registration", "--nope");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Unknown option '--nope'/);
  });

  it("generates a registration and validates a config whose adapter is a .ts file, outside tsx", async () => {
    const config = join(dir, "config.yaml");
    await writeFile(
      config,
      [
        "homeserver: { url: 'http://127.0.0.1:8008', domain: localhost }",
        "store: sqlite://data/bridge.db",
        "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}' }",
        `adapter: { module: '${join(root, "test", "fixtures", "config", "adapters", "typed.ts")}', config: { greeting: hey } }`,
      ].join("\n"),
    );
    const gen = bridgekit("generate-registration", "--config", config);
    assert.equal(gen.status, 0, gen.stderr);
    assert.ok(existsSync(join(dir, "registration.yaml")));
    const r = bridgekit("validate", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /adapter "typed:hey" from .*typed\.ts/);
    assert.match(
      r.stdout,
      new RegExp(
        `store sqlite://${join(dir, "data", "bridge.db").replace(/[/.]/g, "\\$&")} \\(not opened\\)`,
      ),
    );
    assert.ok(!existsSync(join(dir, "data")), "validate does not open (create) the store");
  });

  it(`loads the echo example's adapter.ts (a parameter property) outside tsx, on Node ${process.version}`, async () => {
    // Node >= 22.18 strips types itself and rejects a parameter property: the loader must use tsx.
    const echoDir = join(dir, "echo");
    await mkdir(echoDir);
    const config = join(echoDir, "config.yaml");
    await writeFile(
      config,
      [
        "homeserver: { url: 'http://127.0.0.1:8008', domain: localhost }",
        "store: sqlite://data/bridge.db",
        "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}' }",
        `adapter: { module: '${join(root, "examples", "echo", "src", "adapter.ts")}' }`,
      ].join("\n"),
    );
    assert.equal(bridgekit("generate-registration", "--config", config).status, 0);
    const r = bridgekit("validate", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /adapter "echo" from .*adapter\.ts \(loaded, not started\)/);
  });

  it("exits 1 when validation finds a problem", async () => {
    const config = join(dir, "bad.yaml");
    await writeFile(config, "homeserver: { url: nope, domain: localhost }\n");
    const r = bridgekit("validate", "--config", config);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml: homeserver\.url: must be an http\(s\) URL, got "nope"/);
  });
});
