import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkConfig, resolveStoreUrl, validateConfig } from "../../../src/config/validate.js";
import { schemaKeys } from "../../../src/config/schema.js";
import { ValidationError } from "../../../src/common/validation-error.js";
import { editDistance, closest } from "../../../src/config/suggest.js";
import type { BridgeConfig } from "../../../src/config/types.js";

/** The smallest valid document: only the required keys. */
function minimal(): Record<string, Record<string, unknown>> {
  return {
    homeserver: { url: "http://127.0.0.1:8008", domain: "example.org" },
    bridge: { ghosts: "irc_{id}" },
    adapter: { module: "./adapter.js" },
  };
}

/** The problems for `doc`, as "path: message" lines. */
function problems(doc: unknown): string[] {
  return checkConfig(doc).problems.map((p) => `${p.path}: ${p.message}`);
}

/** Applies `patch` (a dotted path and a value) to a minimal document and returns its problems. */
function problemsWith(path: string, value: unknown): string[] {
  const doc: Record<string, unknown> = minimal();
  const parts = path.split(".");
  let target = doc;
  for (const part of parts.slice(0, -1)) {
    target[part] ??= {};
    target = target[part] as Record<string, unknown>;
  }
  if (value === undefined) delete target[parts.at(-1)!];
  else target[parts.at(-1)!] = value;
  return problems(doc);
}

describe("config validation", () => {
  it("accepts the minimal document and fills every default", () => {
    const config = validateConfig(minimal(), "config.yaml", { configDir: "/srv/bridge" });
    assert.equal(config.appservice.registration, "/srv/bridge/registration.yaml");
    assert.equal(config.appservice.host, "127.0.0.1");
    assert.equal(config.appservice.port, 9000);
    assert.equal(config.store, "sqlite:///srv/bridge/bridgekit.db");
    assert.equal(config.bridge.unsupportedNotice, true);
    assert.equal(config.bridge.portals, undefined);
    assert.deepEqual(config.adapter.config, {});
    assert.equal(config.logging.level, "info");
    assert.equal(config.metrics.enabled, false);
    assert.equal(config.metrics.port, undefined);
    assert.equal(config.configDir, "/srv/bridge");
    assert.deepEqual(config.warnings, []);
    for (const key of ["maxBodyBytes", "handlerTimeoutMs", "roomConcurrency"] as const) {
      assert.ok(Number.isInteger(config.appservice[key]) && config.appservice[key] > 0, key);
    }
    assert.equal(config.inbox.transactions, 10_000);
    assert.deepEqual(config.inbox.retry, {
      firstDelayMs: 1_000,
      maxDelayMs: 300_000,
      maxAttempts: 10,
      maxAgeMs: 3_600_000,
      unexpectedAttempts: 3,
    });
    assert.equal(config.inbox.deadLetterNotice, true);
    for (const key of ["concurrency", "retryAttempts", "maxBackoffMs", "requestTimeoutMs"] as const) {
      assert.ok(Number.isInteger(config.client[key]), key);
    }
    assert.equal(config.media.maxBytes, 100 * 1024 * 1024);
  });

  it("gives a BridgeConfig with exactly the schema's keys (types.ts cannot drift from schema.ts)", () => {
    const doc = minimal();
    doc.bridge!.portals = "irc_{id}";
    doc.bridge!.botDisplayName = "IRC bot";
    doc.metrics = { port: 9001 };
    Object.assign(doc, {
      commands: { prefix: "!irc" },
      logins: { encryptionKey: "0123456789abcdef0123" },
      provisioning: { sharedSecret: "0123456789abcdef" },
      media: { publicUrl: "https://bridge.example.org", linkKey: "0123456789abcdef" },
      doublePuppet: { registration: "dp.yaml" },
      encryption: { allow: true, pickleKey: "0123456789abcdef" },
    });
    const config: BridgeConfig = validateConfig(doc, "c", { configDir: "/x" });
    const leaves: string[] = [];
    const walk = (obj: Record<string, unknown>, prefix: string) => {
      for (const [k, v] of Object.entries(obj)) {
        const path = prefix === "" ? k : `${prefix}.${k}`;
        if (["configDir", "warnings", "adapter.config", "permissions"].includes(path)) leaves.push(path);
        else if (typeof v === "object" && v !== null) walk(v as Record<string, unknown>, path);
        else leaves.push(path);
      }
    };
    walk(config as unknown as Record<string, unknown>, "");
    assert.deepEqual(
      leaves.filter((p) => p !== "configDir" && p !== "warnings").sort(),
      schemaKeys()
        .map((k) => k.path)
        .sort(),
    );
  });

  it("does not change the document it was given", () => {
    const doc = minimal();
    const before = structuredClone(doc);
    validateConfig(doc, "c", { configDir: "/x", env: { BRIDGEKIT_APPSERVICE_PORT: "1234" } });
    assert.deepEqual(doc, before);
  });

  it("reports every problem at once, naming the source and each key path", () => {
    let err: unknown;
    try {
      validateConfig(
        { homeserver: { url: "x" }, bridge: { ghosts: "irc" }, logging: { level: "loud" } },
        "config.yaml",
      );
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ValidationError);
    const lines = err.problems.map((p) => p.path);
    assert.deepEqual(lines, [
      "homeserver.url",
      "homeserver.domain",
      "bridge.ghosts",
      "adapter.module",
      "logging.level",
    ]);
    assert.match(err.message, /config\.yaml: homeserver\.url: must be an http\(s\) URL, got "x"/);
    assert.match(err.message, /config\.yaml is not valid \(5 problems\)/);
  });

  it("rejects a document that is not a mapping", () => {
    assert.match(problems(["a"]).join(), /^: must be a mapping of sections.*got a list/);
    assert.match(problems("text").join(), /got "text"/);
  });

  it("reports required keys, each with what it is for", () => {
    for (const path of ["homeserver.url", "homeserver.domain", "bridge.ghosts", "adapter.module"]) {
      const found = problemsWith(path, undefined);
      assert.equal(found.length, 1, path);
      assert.match(found[0]!, new RegExp(`^${path.replace(".", "\\.")}: is required \\(.+\\)$`));
    }
    // A key written with no value (YAML null) counts as absent.
    assert.match(problemsWith("homeserver.url", null).join(), /homeserver\.url: is required/);
  });

  it("checks sections are mappings", () => {
    assert.deepEqual(problemsWith("appservice", 9000), [
      "appservice: must be a mapping (the HTTP server the homeserver pushes to), got number 9000",
    ]);
    assert.match(problemsWith("homeserver", "http://x").join(), /^homeserver: must be a mapping/);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ["homeserver.url", "matrix.example.org", /must be an http\(s\) URL, got "matrix\.example\.org"/],
    ["homeserver.url", "ftp://example.org", /must be an http\(s\) URL/],
    ["homeserver.url", "https://user:pw@example.org", /must not contain credentials/],
    ["homeserver.url", 8008, /must be a string, got number 8008/],
    ["homeserver.domain", "example org", /must be a server name/],
    ["homeserver.domain", "example.org:99999", /must be a server name/],
    ["homeserver.domain", "@example.org", /must be a server name/],
    ["appservice.registration", "", /must not be empty/],
    ["appservice.host", "not a host", /must be a host name or IP address/],
    ["appservice.port", 70000, /must be between 0 and 65535, got number 70000/],
    ["appservice.port", -1, /must be between 0 and 65535/],
    ["appservice.port", 90.5, /must be an integer, got number 90\.5/],
    ["appservice.port", "9000", /must be an integer, got "9000"/],
    ["appservice.maxBodyBytes", 10, /must be at least 1024/],
    ["appservice.handlerTimeoutMs", 0, /must be at least 1/],
    ["appservice.roomConcurrency", 0, /must be at least 1/],
    ["inbox.transactions", 5, /must be at least 100/],
    ["inbox.maxPendingItems", 0, /must be at least 1/],
    ["inbox.retry.firstDelayMs", -1, /must be at least 0/],
    ["inbox.retry.maxDelayMs", "5m", /must be an integer, got "5m"/],
    ["inbox.retry.maxAttempts", 0, /must be at least 1/],
    ["inbox.retry.maxAgeMs", 1.5, /must be an integer, got number 1\.5/],
    ["inbox.retry.unexpectedAttempts", 0, /must be at least 1/],
    ["inbox.maxDeadLetters", 0, /must be at least 1/],
    ["inbox.deadLetterNotice", "no", /must be true or false, got "no"/],
    ["lease.standby", "maybe", /must be true or false, got "maybe"/],
    ["lease.ttlMs", 10, /must be at least 1000/],
    ["store", "mysql://db/x", /must be a store URL: memory:\/\/, sqlite:/],
    ["store", "bridge.db", /must be a store URL/],
    ["store", "sqlite://", /must name a database file/],
    ["store", "postgres://", /must be a postgres:\/\/ URL with a host/],
    ["bridge.ghosts", "irc_", /must contain \{id\} exactly once, got "irc_"/],
    ["bridge.ghosts", "{id}_{id}", /must contain \{id\} exactly once/],
    ["bridge.ghosts", "IRC_{id}", /may only use a-z 0-9 \. _ = - \/ outside \{id\}, got "IRC_\{id\}"/],
    ["bridge.portals", "irc {id}", /may only use/],
    ["bridge.botDisplayName", "  ", /must not be empty/],
    ["bridge.unsupportedNotice", "yes", /must be true or false, got "yes"/],
    ["bridge.spaces", "user", /must be one of off, network, login/],
    ["adapter.module", "", /must name a package or a file/],
    ["adapter.config", "server=irc.example.org", /must be a mapping, got "server=irc/],
    ["adapter.config", [1], /must be a mapping, got a list/],
    [
      "logging.level",
      "verbose",
      /must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/,
    ],
    ["logging.level", "INFO", /did you mean "info"\?/],
    ["metrics.enabled", 1, /must be true or false, got number 1/],
    ["metrics.host", "a b", /must be a host name or IP address/],
    ["metrics.port", 65536, /must be between 0 and 65535/],
    ["media.spoolDir", "", /must not be empty/],
    ["media.maxBytes", 0, /must be at least 1/],
    ["client.concurrency", 0, /must be at least 1/],
    ["client.retryAttempts", -1, /must be at least 0/],
    ["client.maxBackoffMs", 0, /must be at least 1/],
    ["client.requestTimeoutMs", "30s", /must be an integer, got "30s"/],
    ["media.maxBytes", 0, /must be at least 1/],
    ["permissions", ["@a:b"], /must be a mapping, got a list/],
    ["commands.prefix", " ", /must not be empty/],
    ["logins.encryptionKey", "short", /must be at least 16 characters, got a secret of 5 characters/],
    ["logins.connectConcurrency", 0, /must be at least 1/],
    ["logins.processTimeoutMs", 10, /must be at least 1000/],
    ["logins.waitTimeoutMs", 10, /must be at least 1000/],
    ["logins.relayFormat", "<{name}>", /must contain \{body\}/],
    ["logins.relayEmoteFormat", "{nick} {body}", /unknown placeholder \{nick\}/],
    ["provisioning.sharedSecret", "hunter2", /must be at least 16 characters, got a secret of 7 characters/],
    ["media.publicUrl", "ftp://bridge.example.org", /must be an http\(s\) URL/],
    ["media.linkKey", "short", /must be at least 16 characters, got a secret of 5 characters/],
    ["media.linkTtlMs", 10, /must be at least 1000/],
    ["doublePuppet.registration", "", /must not be empty/],
    ["encryption.allow", "yes", /must be true or false/],
    ["encryption.default", true, /needs encryption\.allow: true/],
    ["encryption.require", true, /needs encryption\.allow: true/],
    ["encryption.pickleKey", "short", /must be at least 16 characters, got a secret of 5 characters/],
    ["encryption.deviceName", " ", /must not be empty/],
    ["encryption.trust", "verified", /must be one of/],
    ["backfill.enabled", "yes", /must be true or false/],
    ["backfill.maxOnCreate", -1, /must be at least 0/],
    ["backfill.maxAfterGap", 1.5, /must be an integer/],
    ["backfill.maxAgeMs", -5, /must be at least 0/],
    ["backfill.concurrency", 0, /must be at least 1/],
    ["backfill.timeoutMs", 10, /must be at least 1000/],
  ];
  for (const [path, value, expected] of cases) {
    it(`rejects ${path}: ${JSON.stringify(value)}`, () => {
      const found = problemsWith(path, value);
      assert.equal(found.length, 1, found.join("\n"));
      assert.ok(found[0]!.startsWith(`${path}: `), found[0]);
      assert.match(found[0]!, expected);
    });
  }

  it("covers every schema key with a failing case or a required check", () => {
    const covered = new Set(cases.map(([path]) => path));
    const uncovered = schemaKeys().filter((k) => !covered.has(k.path) && !k.spec.required);
    assert.deepEqual(
      uncovered.map((k) => k.path),
      [],
    );
  });

  it("accepts the values each format allows", () => {
    const good: Array<[string, unknown]> = [
      ["homeserver.url", "https://matrix.example.org/base/"],
      ["homeserver.domain", "localhost"],
      ["homeserver.domain", "my-host.example.org:8448"],
      ["homeserver.domain", "[::1]:8448"],
      ["homeserver.domain", "10.0.0.1"],
      ["appservice.host", "0.0.0.0"],
      ["appservice.host", "::"],
      ["appservice.host", "bridge.internal"],
      ["appservice.port", 0],
      ["store", "memory://"],
      ["store", "sqlite:///var/lib/bridge.db"],
      ["store", "postgresql://postgres@127.0.0.1:5432/test"],
      ["store", "rediss://:secret@redis.example.org:6380"],
      ["bridge.ghosts", "_irc_{id}"],
      ["bridge.ghosts", "{id}.irc"],
      ["adapter.module", "@acme/bridge-adapter"],
      ["adapter.config", { nested: { list: [1, 2] } }],
      ["logging.level", "silent"],
    ];
    for (const [path, value] of good)
      assert.deepEqual(problemsWith(path, value), [], `${path}=${String(value)}`);
  });

  it("checks templates against the configured domain", () => {
    const doc = minimal();
    doc.bridge!.ghosts = "x_{id}";
    doc.homeserver!.domain = "bad domain";
    // Only the domain is reported: the template is fine, whatever the domain.
    assert.deepEqual(
      problems(doc).map((p) => p.split(":")[0]),
      ["homeserver.domain"],
    );
  });

  it("keeps adapter.config exactly as written", () => {
    const doc = minimal();
    doc.adapter!.config = { server: "irc.example.org", channels: ["#a", "#b"], tls: { verify: false } };
    const config = validateConfig(doc, "c");
    assert.deepEqual(config.adapter.config, doc.adapter!.config);
  });

  it("refuses metrics on the appservice's own port, and warns about a port with metrics off", () => {
    const doc: Record<string, Record<string, unknown>> = minimal();
    doc.metrics = { enabled: true, port: 9000 };
    assert.deepEqual(problems(doc), [
      "metrics.port: must differ from appservice.port (9000); leave it out to serve /metrics on the appservice port",
    ]);
    doc.metrics = { enabled: false, port: 9001 };
    const checked = checkConfig(doc);
    assert.deepEqual(checked.problems, []);
    assert.match(checked.warnings.join(), /metrics\.port is set but metrics\.enabled is false/);
  });
});

describe("unknown keys", () => {
  it("are errors, with the closest known key suggested", () => {
    const doc: Record<string, Record<string, unknown>> = minimal();
    doc.homeserver!.domian = "x";
    doc.appservice = { prot: 1, max_body_bytes: 1, whatever: true };
    doc.bridge!.ghost = "irc_{id}";
    assert.deepEqual(problems(doc), [
      'homeserver.domian: is not a config key (did you mean "homeserver.domain"?)',
      'appservice.prot: is not a config key (did you mean "appservice.port"?)',
      'appservice.max_body_bytes: is not a config key (did you mean "appservice.maxBodyBytes"?)',
      "appservice.whatever: is not a config key",
      'bridge.ghost: is not a config key (did you mean "bridge.ghosts"?)',
    ]);
  });

  it("at the top level suggest a section or a key written in the wrong section", () => {
    const doc: Record<string, unknown> = minimal();
    doc.homeservr = {};
    doc.port = 9000;
    doc.level = "debug";
    doc.unrelated = 1;
    assert.deepEqual(problems(doc), [
      'homeservr: is not a config key (did you mean "homeserver"?)',
      'port: is not a config key (did you mean "appservice.port"?)',
      'level: is not a config key (did you mean "logging.level"?)',
      "unrelated: is not a config key",
    ]);
  });

  it("inside adapter.config are the adapter's business, not errors", () => {
    const doc = minimal();
    doc.adapter!.config = { anything: 1 };
    assert.deepEqual(problems(doc), []);
  });
});

describe("path resolution", () => {
  it("resolves the registration path against the config folder; absolute paths stay", () => {
    const doc: Record<string, Record<string, unknown>> = minimal();
    doc.appservice = { registration: "../secrets/reg.yaml" };
    assert.equal(
      validateConfig(doc, "c", { configDir: "/etc/bridge/conf" }).appservice.registration,
      "/etc/bridge/secrets/reg.yaml",
    );
    doc.appservice = { registration: "/var/lib/reg.yaml" };
    assert.equal(
      validateConfig(doc, "c", { configDir: "/etc" }).appservice.registration,
      "/var/lib/reg.yaml",
    );
  });

  it("defaults configDir to the working directory", () => {
    const config = validateConfig(minimal(), "c");
    assert.equal(config.configDir, process.cwd());
    assert.equal(config.appservice.registration, join(process.cwd(), "registration.yaml"));
  });

  it("makes sqlite store URLs absolute and leaves others alone", () => {
    assert.equal(resolveStoreUrl("sqlite://data/echo.db", "/srv/b"), "sqlite:///srv/b/data/echo.db");
    assert.equal(resolveStoreUrl("sqlite:///abs/x.db", "/srv/b"), "sqlite:///abs/x.db");
    assert.equal(resolveStoreUrl("sqlite://../x.db?mode=rw", "/srv/b"), "sqlite:///srv/x.db?mode=rw");
    assert.equal(resolveStoreUrl("sqlite://my%20data/x.db", "/srv"), "sqlite:///srv/my%20data/x.db");
    assert.equal(resolveStoreUrl("postgres://u@h/db", "/srv"), "postgres://u@h/db");
    assert.equal(resolveStoreUrl("memory://", "/srv"), "memory://");
  });
});

describe("key suggestions", () => {
  it("counts a swap of neighbours as one edit", () => {
    assert.equal(editDistance("prot", "port"), 1);
    assert.equal(editDistance("kitten", "sitting"), 3);
    assert.equal(editDistance("", "abc"), 3);
  });

  it("suggests only close candidates", () => {
    assert.equal(closest("domian", ["url", "domain"]), "domain");
    assert.equal(closest("MAX_BODY_BYTES", ["maxBodyBytes", "port"]), "maxBodyBytes");
    assert.equal(closest("zzz", ["url", "domain"]), undefined);
  });
});

describe("config permissions", () => {
  it("defaults to relaying everyone and letting the homeserver's own users log in", () => {
    const config = validateConfig(minimal(), "c", { configDir: "/x" });
    assert.deepEqual(config.permissions, { "*": "relay", [config.homeserver.domain]: "user" });
  });

  it("names each bad entry: an unknown level, a malformed user id or server name", () => {
    const doc = {
      ...minimal(),
      permissions: { "@admin:example.org": "admin", "@bad": "user", "ex ample": "user", "*": "relya" },
    };
    const found = problems(doc);
    assert.ok(
      found.some((p) => p.startsWith("permissions.@bad: is not a user id")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("permissions.ex ample: is not a user id")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) =>
        /^permissions\.\*: must be relay, user or admin, got "relya" \(did you mean "relay"\?\)/.test(p),
      ),
      found.join("\n"),
    );
    assert.equal(found.length, 3, found.join("\n"));
  });

  it("wants media.linkKey with media.publicUrl, and nothing else with it", () => {
    const found = problems({ ...minimal(), media: { publicUrl: "https://bridge.example.org" } });
    assert.deepEqual(found.length, 1, found.join("\n"));
    assert.match(found[0]!, /^media\.linkKey: is required with media\.publicUrl/);
    const short = problems({ ...minimal(), media: { publicUrl: "https://b.example.org", linkKey: "short" } });
    assert.equal(short.length, 1, short.join("\n"));
    assert.match(short[0]!, /^media\.linkKey: must be at least 16 characters/);
    assert.deepEqual(problems({ ...minimal(), media: { linkKey: "0123456789abcdef" } }), []);
  });

  it("wants encryption.pickleKey with encryption.allow, and refuses default and require for now", () => {
    const found = problems({ ...minimal(), encryption: { allow: true } });
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0]!, /^encryption\.pickleKey: is required with encryption\.allow/);
    const on = { allow: true, pickleKey: "0123456789abcdef" };
    assert.deepEqual(problems({ ...minimal(), encryption: on }), []);
    const later = problems({ ...minimal(), encryption: { ...on, default: true, require: true } });
    assert.deepEqual(
      later.map((p) => p.split(":")[0]),
      ["encryption.default", "encryption.require"],
    );
    assert.match(later[0]!, /not supported yet/);
  });

  it("never prints a secret back", () => {
    const found = problems({ ...minimal(), provisioning: { sharedSecret: "tooshort!" } });
    assert.equal(found.length, 1);
    assert.ok(!found[0]!.includes("tooshort"), found[0]);
  });
});
