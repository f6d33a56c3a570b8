import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyEnvOverrides, envVarName } from "../../../src/config/env.js";
import { checkConfig, validateConfig } from "../../../src/config/validate.js";
import { schemaKeys } from "../../../src/config/schema.js";

function minimal(): Record<string, Record<string, unknown>> {
  return {
    homeserver: { url: "http://127.0.0.1:8008", domain: "example.org" },
    bridge: { ghosts: "irc_{id}" },
    adapter: { module: "./adapter.js" },
  };
}

describe("env overrides", () => {
  it("name variables BRIDGEKIT_<SECTION>_<KEY> in upper snake case", () => {
    assert.equal(envVarName("homeserver.url"), "BRIDGEKIT_HOMESERVER_URL");
    assert.equal(envVarName("appservice.port"), "BRIDGEKIT_APPSERVICE_PORT");
    assert.equal(envVarName("appservice.maxBodyBytes"), "BRIDGEKIT_APPSERVICE_MAX_BODY_BYTES");
    assert.equal(envVarName("store"), "BRIDGEKIT_STORE");
    assert.equal(envVarName("logging.level"), "BRIDGEKIT_LOGGING_LEVEL");
    const names = schemaKeys().map((k) => envVarName(k.path));
    assert.equal(new Set(names).size, names.length, "no two keys share a variable");
  });

  it("override the file, typed by the schema", () => {
    const config = validateConfig(minimal(), "c", {
      configDir: "/srv",
      env: {
        BRIDGEKIT_HOMESERVER_URL: "https://matrix.example.org",
        BRIDGEKIT_APPSERVICE_PORT: "9100",
        BRIDGEKIT_STORE: "postgres://postgres@127.0.0.1/test",
        BRIDGEKIT_LOGGING_LEVEL: "debug",
        BRIDGEKIT_METRICS_ENABLED: "yes",
        BRIDGEKIT_BRIDGE_UNSUPPORTED_NOTICE: "false",
        BRIDGEKIT_ADAPTER_CONFIG: '{"server":"irc.example.org"}',
        BRIDGEKIT_APPSERVICE_REGISTRATION: "secrets/reg.yaml",
      },
    });
    assert.equal(config.homeserver.url, "https://matrix.example.org");
    assert.equal(config.appservice.port, 9100);
    assert.equal(config.store, "postgres://postgres@127.0.0.1/test");
    assert.equal(config.logging.level, "debug");
    assert.equal(config.metrics.enabled, true);
    assert.equal(config.bridge.unsupportedNotice, false);
    assert.deepEqual(config.adapter.config, { server: "irc.example.org" });
    assert.equal(
      config.appservice.registration,
      "/srv/secrets/reg.yaml",
      "env paths resolve like file paths",
    );
  });

  it("can supply required keys for an empty file", () => {
    const config = validateConfig(undefined, "c", {
      env: {
        BRIDGEKIT_HOMESERVER_URL: "http://hs:8008",
        BRIDGEKIT_HOMESERVER_DOMAIN: "example.org",
        BRIDGEKIT_BRIDGE_GHOSTS: "x_{id}",
        BRIDGEKIT_ADAPTER_MODULE: "x-adapter",
      },
    });
    assert.equal(config.homeserver.domain, "example.org");
    assert.equal(config.adapter.module, "x-adapter");
  });

  it("report a value of the wrong type naming the variable, with every other problem", () => {
    const doc = minimal();
    doc.homeserver!.url = "nope";
    const { problems } = checkConfig(doc, {
      BRIDGEKIT_APPSERVICE_PORT: "ninety",
      BRIDGEKIT_METRICS_ENABLED: "maybe",
      BRIDGEKIT_ADAPTER_CONFIG: "[1]",
      BRIDGEKIT_CLIENT_CONCURRENCY: "99999999999999999999",
    });
    assert.deepEqual(
      problems.map((p) => `${p.path}: ${p.message}`),
      [
        'homeserver.url: must be an http(s) URL, got "nope"',
        'appservice.port: must be an integer, got "ninety" (from BRIDGEKIT_APPSERVICE_PORT)',
        "adapter.config: must be a JSON object, got a list (from BRIDGEKIT_ADAPTER_CONFIG)",
        'metrics.enabled: must be true or false, got "maybe" (from BRIDGEKIT_METRICS_ENABLED)',
        'client.concurrency: is too large, got "99999999999999999999" (from BRIDGEKIT_CLIENT_CONCURRENCY)',
      ],
    );
  });

  it("report a well-typed but invalid value naming the variable", () => {
    const { problems } = checkConfig(minimal(), {
      BRIDGEKIT_APPSERVICE_PORT: "70000",
      BRIDGEKIT_HOMESERVER_URL: "example.org",
      BRIDGEKIT_ADAPTER_CONFIG: "{not json",
    });
    assert.deepEqual(
      problems.map((p) => `${p.path}: ${p.message}`),
      [
        'homeserver.url: must be an http(s) URL, got "example.org" (from BRIDGEKIT_HOMESERVER_URL)',
        "appservice.port: must be between 0 and 65535, got number 70000 (from BRIDGEKIT_APPSERVICE_PORT)",
        "adapter.config: must be a JSON object, and does not parse as JSON (from BRIDGEKIT_ADAPTER_CONFIG)",
      ],
    );
  });

  it("never echo a store URL's password in an error", () => {
    const { problems } = checkConfig(minimal(), {
      BRIDGEKIT_STORE: "mysql://user:hunter2hunter2hunter2hunter2hunter2@db/x",
    });
    assert.equal(problems.length, 1);
    assert.ok(!problems[0]!.message.includes("hunter2hunter2hunter2hunter2hunter2"), problems[0]!.message);
  });

  it("warn about unknown BRIDGEKIT_ variables that look like config keys, and ignore the rest", () => {
    const { warnings, problems } = checkConfig(minimal(), {
      BRIDGEKIT_APPSERVICE_PROT: "9000",
      BRIDGEKIT_HOMESERVER_URLL: "http://x",
      BRIDGEKIT_METRICS_SOMETHING: "1",
      BRIDGEKIT_STOR: "memory://",
      BRIDGEKIT_TEST_APPSERVICE_PORT: "1",
      BRIDGEKIT_TEST_ARGS: "--test-only",
      BRIDGEKIT_HOME: "/opt/bridgekit",
      OTHER_APPSERVICE_PORT: "1",
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(warnings, [
      "environment variable BRIDGEKIT_APPSERVICE_PROT is not a config key and is ignored (did you mean BRIDGEKIT_APPSERVICE_PORT?)",
      "environment variable BRIDGEKIT_HOMESERVER_URLL is not a config key and is ignored (did you mean BRIDGEKIT_HOMESERVER_URL?)",
      "environment variable BRIDGEKIT_METRICS_SOMETHING is not a config key and is ignored",
      "environment variable BRIDGEKIT_STOR is not a config key and is ignored (did you mean BRIDGEKIT_STORE?)",
    ]);
  });

  it("leave a section that is not a mapping for validation to report", () => {
    const doc: Record<string, unknown> = minimal();
    doc.appservice = "oops";
    const out = applyEnvOverrides(doc, { BRIDGEKIT_APPSERVICE_PORT: "1" });
    assert.equal((out.doc as Record<string, unknown>).appservice, "oops");
    assert.match(
      checkConfig(doc, { BRIDGEKIT_APPSERVICE_PORT: "1" })
        .problems.map((p) => p.path + ": " + p.message)
        .join(),
      /^appservice: must be a mapping/,
    );
  });
});
