import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, readFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.js";
import { schemaKeys } from "../../../src/config/schema.js";
import { configTableRows, renderConfigTable } from "../../../src/config/docs-table.js";
import { envVarName } from "../../../src/config/env.js";
import { ValidationError } from "../../../src/common/validation-error.js";

const root = join(import.meta.dirname, "../../..");

describe("loadConfig", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bridgekit-config-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads a file, resolving paths against the file's folder, not the working directory", async () => {
    await mkdir(join(dir, "conf"), { recursive: true });
    const path = join(dir, "conf", "config.yaml");
    await writeFile(
      path,
      [
        "homeserver: { url: http://127.0.0.1:8008, domain: localhost }",
        "appservice: { registration: reg/registration.yaml, port: 9123 }",
        "store: sqlite://data/bridge.db",
        "bridge: { ghosts: 'irc_{id}', portals: 'irc_{id}' }",
        "adapter: { module: ./adapter.js, config: { server: irc.example.org } }",
      ].join("\n"),
    );
    const config = await loadConfig(path, {});
    assert.equal(config.configDir, join(dir, "conf"));
    assert.equal(config.appservice.registration, join(dir, "conf", "reg", "registration.yaml"));
    assert.equal(config.store, `sqlite://${join(dir, "conf", "data", "bridge.db")}`);
    assert.equal(config.appservice.port, 9123);
    assert.deepEqual(config.adapter.config, { server: "irc.example.org" });
  });

  it("applies env overrides from the given env, not process.env", async () => {
    const path = join(dir, "env.yaml");
    await writeFile(
      path,
      "homeserver: { url: http://hs, domain: localhost }\nbridge: { ghosts: 'x_{id}' }\n",
    );
    const config = await loadConfig(path, {
      BRIDGEKIT_ADAPTER_MODULE: "some-adapter",
      BRIDGEKIT_APPSERVICE_PORT: "1234",
      BRIDGEKIT_LOGING_LEVEL: "debug",
    });
    assert.equal(config.adapter.module, "some-adapter");
    assert.equal(config.appservice.port, 1234);
    assert.deepEqual(config.warnings, [
      "environment variable BRIDGEKIT_LOGING_LEVEL is not a config key and is ignored (did you mean BRIDGEKIT_LOGGING_LEVEL?)",
    ]);
  });

  it("names the file in every problem", async () => {
    const path = join(dir, "bad.yaml");
    await writeFile(
      path,
      "homeserver: { url: x, domain: localhost }\nbridge: { ghosts: 'x_{id}' }\nadapter: { module: a }\n",
    );
    await assert.rejects(loadConfig(path, {}), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.source, path);
      assert.match(
        err.message,
        new RegExp(`${path.replace(/[/.]/g, "\\$&")}: homeserver\\.url: must be an http\\(s\\) URL, got "x"`),
      );
      return true;
    });
  });

  it("reports a missing file and a YAML syntax error naming the file", async () => {
    await assert.rejects(
      loadConfig(join(dir, "absent.yaml"), {}),
      /absent\.yaml: \(document\): file not found/,
    );
    const path = join(dir, "syntax.yaml");
    await writeFile(path, "homeserver: [unclosed\n");
    await assert.rejects(loadConfig(path, {}), /syntax\.yaml: \(document\): YAML syntax error/);
  });

  it("reports an empty file clearly, and `{}` as missing the required keys", async () => {
    const empty = join(dir, "empty.yaml");
    await writeFile(empty, "");
    await assert.rejects(loadConfig(empty, {}), /empty\.yaml: \(document\): YAML syntax error: .*empty/);
    const path = join(dir, "braces.yaml");
    await writeFile(path, "{}\n");
    await assert.rejects(loadConfig(path, {}), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.deepEqual(
        err.problems.map((p) => p.path),
        ["homeserver.url", "homeserver.domain", "bridge.ghosts", "adapter.module"],
      );
      return true;
    });
  });
});

describe("config.example.yaml", () => {
  it("loads cleanly and configures the echo example", async () => {
    const config = await loadConfig(join(root, "config.example.yaml"), {});
    assert.equal(config.homeserver.url, "http://127.0.0.1:8008");
    assert.equal(config.homeserver.domain, "localhost");
    assert.equal(config.adapter.module, "./examples/echo/src/adapter.ts");
    assert.equal(config.bridge.ghosts, "echo_{id}");
    assert.equal(config.bridge.portals, "echo_{id}");
    assert.equal(config.store, `sqlite://${join(root, "data", "echo.db")}`);
    assert.equal(config.appservice.registration, join(root, "registration.yaml"));
    assert.deepEqual(config.warnings, []);
  });

  it("mentions every key of the schema", async () => {
    const text = await readFile(join(root, "config.example.yaml"), "utf8");
    const missing = schemaKeys()
      .map((k) => k.path.split(".").at(-1)!)
      .filter((name) => !new RegExp(`^\\s*(#\\s*)?${name}:`, "m").test(text));
    assert.deepEqual(missing, []);
  });
});

describe("docs/config.md", () => {
  it("holds the table generated from the schema, row for row", async () => {
    const text = await readFile(join(root, "docs", "config.md"), "utf8");
    const stale = configTableRows().filter((row) => !text.includes(row));
    assert.deepEqual(
      stale,
      [],
      `docs/config.md is out of date with src/config/schema.ts; replace its table with:\n\n${renderConfigTable()}\n`,
    );
    const documented = [...text.matchAll(/^\| `([a-zA-Z.]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(
      documented,
      schemaKeys().map((k) => k.path),
      "no row for a key the schema lacks",
    );
  });

  it("names every env variable", async () => {
    const text = await readFile(join(root, "docs", "config.md"), "utf8");
    for (const { path } of schemaKeys()) assert.ok(text.includes(envVarName(path)), path);
  });
});
