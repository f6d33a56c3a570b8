import { describe, it, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run-cli.js";
import { idFromTemplate } from "../../../src/cli/generate-registration.js";
import { checkEncryptionRegistration, checkRegistrationMatchesAdapter } from "../../../src/cli/validate.js";
import {
  ENCRYPTION_REGISTRATION_KEYS,
  loadRegistration,
  NamespaceMatcher,
  saveRegistration,
} from "../../../src/registration/index.js";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";

const fixtures = join(import.meta.dirname, "../../fixtures/config/adapters");

function configYaml(
  overrides: { adapter?: string; ghosts?: string; portals?: string; extra?: string } = {},
): string {
  return [
    "homeserver:",
    "  url: http://127.0.0.1:8008",
    "  domain: example.org",
    "appservice:",
    "  port: 9123",
    "store: memory://",
    "bridge:",
    `  ghosts: ${overrides.ghosts ?? "irc_{id}"}`,
    ...(overrides.portals === "" ? [] : [`  portals: ${overrides.portals ?? "irc_{id}"}`]),
    "adapter:",
    `  module: ${overrides.adapter ?? join(fixtures, "good.js")}`,
    "  config: { server: irc.example.org }",
    overrides.extra ?? "",
  ].join("\n");
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bridgekit", () => {
  it("--help lists the commands and exits 0; no command is a usage error", async () => {
    const help = await run("--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /generate-registration/);
    assert.match(help.out, /validate/);
    assert.equal((await run()).code, 2);
  });

  it("an unknown command is a usage error", async () => {
    const r = await run("frobnicate");
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command "frobnicate"/);
    assert.equal((await run("toString")).code, 2, "object prototype names are no commands");
  });

  it("every command has --help", async () => {
    for (const name of ["generate-registration", "validate"]) {
      const r = await run(name, "--help");
      assert.equal(r.code, 0, name);
      assert.match(r.out, new RegExp(`^usage: bridgekit ${name}`), name);
      assert.match(r.out, /--config/, name);
    }
  });

  it("an unknown flag is a usage error that shows the usage", async () => {
    const r = await run("validate", "--confg", "x.yaml");
    assert.equal(r.code, 2);
    assert.match(r.err, /Unknown option '--confg'/);
    assert.match(r.err, /usage: bridgekit validate/);
  });
});

describe("bridgekit generate-registration", () => {
  it("without a config, from flags: exclusive escaped namespaces, no rate limit, fresh tokens, mode 0600", async () => {
    const output = join(dir, "flags.yaml");
    const r = await run(
      "generate-registration",
      "--id",
      "irc",
      "--url",
      "http://127.0.0.1:9000",
      "--domain",
      "my-host.example.org",
      "--output",
      output,
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*flags\.yaml \(mode 0600\)/);
    assert.equal((await stat(output)).mode & 0o777, 0o600);
    const reg = await loadRegistration(output);
    assert.equal(reg.sender_localpart, "ircbot");
    assert.equal(reg.rate_limited, false);
    assert.deepEqual(reg.namespaces.users, [{ regex: "@irc_.*:my\\-host\\.example\\.org", exclusive: true }]);
    assert.deepEqual(reg.namespaces.aliases, [
      { regex: "#irc_.*:my\\-host\\.example\\.org", exclusive: true },
    ]);
    assert.ok(!r.out.includes(reg.as_token) && !r.out.includes(reg.hs_token), "tokens are not printed");
  });

  it("without a config, reports missing flags as a usage error", async () => {
    const r = await run("generate-registration", "--id", "irc", "--output", join(dir, "never.yaml"));
    assert.equal(r.code, 2);
    assert.match(r.err, /missing --url, --domain \(or give --config\)/);
    await assert.rejects(stat(join(dir, "never.yaml")));
  });

  it("reports a bad flag value as a usage error", async () => {
    const base = ["generate-registration", "--url", "http://x:1", "--domain", "example.org"];
    const prefix = await run(...base, "--id", "irc", "--prefix", "IRC_", "--output", join(dir, "n1.yaml"));
    assert.equal(prefix.code, 2);
    assert.match(prefix.err, /may only use a-z 0-9/);
    const id = await run(...base, "--id", "a|b", "--prefix", "x_", "--output", join(dir, "n2.yaml"));
    assert.equal(id.code, 2);
    assert.match(id.err, /id: must not contain "\|"/);
  });

  it("with a config: templates, domain, url, id and output come from it", async () => {
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml({ ghosts: "_irc_{id}", portals: "irc_{id}" }));
    const r = await run("generate-registration", "--config", config);
    assert.equal(r.code, 0, r.err);
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    assert.equal(reg.id, "irc");
    assert.equal(reg.sender_localpart, "ircbot");
    assert.equal(reg.url, "http://127.0.0.1:9123");
    const m = new NamespaceMatcher(reg, "example.org");
    assert.ok(m.isUserExclusive("@_irc_alice:example.org"));
    assert.ok(!m.isUserInNamespace("@irc_alice:example.org"));
    assert.ok(m.isAliasExclusive("#irc_=23chan:example.org"));
    assert.equal((await stat(join(sub, "registration.yaml"))).mode & 0o777, 0o600);
  });

  it("with a config and no portals template: no aliases namespace; flags override id, sender, url, output", async () => {
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml({ portals: "" }));
    const output = join(sub, "custom.yaml");
    const args = ["--id", "myirc", "--sender", "bot", "--url", "https://bridge.internal"];
    const r = await run("generate-registration", "--config", config, ...args, "--output", output);
    assert.equal(r.code, 0, r.err);
    const reg = await loadRegistration(output);
    assert.deepEqual([reg.id, reg.sender_localpart, reg.url], ["myirc", "bot", "https://bridge.internal"]);
    assert.deepEqual(reg.namespaces.aliases, []);
  });

  it("with a config, refuses --domain and --prefix, and an invalid config", async () => {
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml());
    const clash = await run("generate-registration", "--config", config, "--prefix", "x_", "--domain", "a.b");
    assert.equal(clash.code, 2);
    assert.match(clash.err, /--domain and --prefix cannot be used with --config/);
    await writeFile(config, configYaml({ ghosts: "IRC" }));
    const bad = await run("generate-registration", "--config", config);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /config\.yaml: bridge\.ghosts: must contain \{id\} exactly once/);
    await assert.rejects(stat(join(sub, "registration.yaml")), "nothing written");
  });

  it("refuses to overwrite an existing registration unless --force, which rotates the tokens", async () => {
    const output = join(dir, "existing.yaml");
    const args = ["generate-registration", "--id", "irc", "--url", "http://x:1", "--domain", "example.org"];
    assert.equal((await run(...args, "--output", output)).code, 0);
    const before = await readFile(output, "utf8");
    const refused = await run(...args, "--output", output);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /exists; not overwriting it.*--force/);
    assert.equal(await readFile(output, "utf8"), before, "file untouched");
    const forced = await run(...args, "--output", output, "--force");
    assert.equal(forced.code, 0);
    const [oldReg, newReg] = [
      (await import("js-yaml")).load(before) as { as_token: string },
      await loadRegistration(output),
    ];
    assert.notEqual(newReg.as_token, oldReg.as_token);
  });

  it("asks for ephemeral data (stable and unstable flags) and lists the adapter's third-party protocols", async () => {
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml({ adapter: join(fixtures, "third-party.js") }));
    const r = await run("generate-registration", "--config", config);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /protocols irc, irc-legacy/);
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["de.sorunome.msc2409.push_ephemeral"], true);
    assert.deepEqual(reg.protocols, ["irc", "irc-legacy"]);
  });

  it("lists no protocols for an adapter without third-party support, or one that does not load (with a warning)", async () => {
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml());
    const r = await run("generate-registration", "--config", config);
    assert.equal(r.code, 0, r.err);
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    assert.equal(reg.protocols, undefined);
    assert.equal(reg.receive_ephemeral, true);
    await writeFile(config, configYaml({ adapter: join(fixtures, "no-default.js") }));
    const broken = await run("generate-registration", "--config", config, "--force");
    assert.equal(broken.code, 0, broken.err);
    assert.match(broken.err, /warning: adapter\.module: .*no third-party protocols listed/);
  });

  it("without a config, asks for ephemeral data too", async () => {
    const output = join(dir, "flags-ephemeral.yaml");
    const r = await run(
      "generate-registration",
      ...["--id", "irc", "--url", "http://x:1", "--domain", "example.org", "--output", output],
    );
    assert.equal(r.code, 0, r.err);
    const reg = await loadRegistration(output);
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["de.sorunome.msc2409.push_ephemeral"], true);
  });

  it("derives an id from a ghost template, or asks for --id", async () => {
    assert.equal(idFromTemplate("irc_{id}"), "irc");
    assert.equal(idFromTemplate("_discord_{id}"), "discord");
    assert.equal(idFromTemplate("{id}_irc"), undefined);
    const sub = await mkdtemp(join(dir, "conf-"));
    const config = join(sub, "config.yaml");
    await writeFile(config, configYaml({ ghosts: '"{id}.irc"', portals: "" }));
    const r = await run("generate-registration", "--config", config);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot derive an id from bridge\.ghosts "\{id\}\.irc": pass --id/);
  });
});

describe("bridgekit validate", () => {
  let sub: string;
  let config: string;
  beforeEach(async () => {
    sub = await mkdtemp(join(dir, "validate-"));
    config = join(sub, "config.yaml");
  });

  async function generate(extra: string[] = []): Promise<void> {
    const r = await run("generate-registration", "--config", config, ...extra);
    assert.equal(r.code, 0, r.err);
  }

  it("passes a consistent setup with a short summary, and loads (not starts) the adapter", async () => {
    await writeFile(config, configYaml());
    await generate();
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^OK .*config\.yaml/);
    assert.match(r.out, /registration .*registration\.yaml: id irc, bot @ircbot:example\.org/);
    assert.match(r.out, /store memory:\/\/ \(not opened\)/);
    assert.match(r.out, /adapter "good" from .*good\.js \(loaded, not started\)/);
    assert.equal(r.err, "");
  });

  it("reports an invalid config and stops there", async () => {
    await writeFile(config, configYaml({ extra: "logging: { levle: debug }" }));
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /logging\.levle: is not a config key \(did you mean "logging\.level"\?\)/);
  });

  it("reports a missing registration with the command that makes one", async () => {
    await writeFile(config, configYaml());
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /registration\.yaml: \(document\): file not found \(make one: bridgekit generate-registration --config/,
    );
  });

  it("reports an invalid registration", async () => {
    await writeFile(config, configYaml());
    await writeFile(join(sub, "registration.yaml"), "id: irc\nurl: 5\n");
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /registration\.yaml: as_token: is required/);
    assert.match(r.err, /registration\.yaml: url: must be a string or null/);
  });

  it("reports templates outside the registration's namespaces, and a failing adapter, all at once", async () => {
    await writeFile(config, configYaml({ ghosts: "slack_{id}", portals: "slack_{id}" }));
    await generate();
    await writeFile(config, configYaml({ adapter: "./missing-adapter.js" }));
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /3 problems/);
    assert.match(
      r.err,
      /bridge\.ghosts "irc_\{id\}" makes @irc_alice:example\.org, which is outside the users namespace .*@slack_/,
    );
    assert.match(
      r.err,
      /bridge\.portals "irc_\{id\}" makes #irc_alice:example\.org, which is outside the aliases namespace/,
    );
    assert.match(
      r.err,
      /adapter\.module: adapter module "\.\/missing-adapter\.js" \(.*missing-adapter\.js\): not found/,
    );
  });

  it("reports a factory that rejects adapter.config, with its message", async () => {
    await writeFile(
      config,
      configYaml({ adapter: join(fixtures, "throws.js") }).replace("server: irc.example.org", "port: 1"),
    );
    await generate();
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /the adapter factory threw: adapter\.config\.server must be a host name/);
  });

  it("reports a bot that would also be a ghost", async () => {
    await writeFile(config, configYaml({ ghosts: "irc{id}", portals: "" }));
    await generate(["--id", "irc", "--sender", "ircbot"]);
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /the bot @ircbot:example\.org .* is also the ghost of remote user "bot"/);
  });

  it("warns (without failing) about a registration url on another port and unknown BRIDGEKIT_ variables", async () => {
    await writeFile(config, configYaml());
    await generate(["--url", "http://127.0.0.1:9999"]);
    process.env.BRIDGEKIT_APPSERVICE_PROT = "1";
    try {
      const r = await run("validate", "--config", config);
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.err,
        /warning: .*url http:\/\/127\.0\.0\.1:9999 uses port 9999 but appservice\.port is 9123/,
      );
      assert.match(r.err, /warning: environment variable BRIDGEKIT_APPSERVICE_PROT is not a config key/);
    } finally {
      delete process.env.BRIDGEKIT_APPSERVICE_PROT;
    }
  });

  it("warns when the adapter handles typing and receipts but the registration asks for no ephemeral data", async () => {
    await writeFile(config, configYaml({ adapter: join(fixtures, "third-party.js") }));
    await generate();
    const ok = await run("validate", "--config", config);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.err, "", "a freshly generated registration fits the adapter");
    const registrationPath = join(sub, "registration.yaml");
    const reg = await loadRegistration(registrationPath);
    delete reg.receive_ephemeral;
    delete reg["de.sorunome.msc2409.push_ephemeral"];
    reg.protocols = ["irc"];
    await saveRegistration(registrationPath, reg);
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 0, "warnings only");
    assert.match(
      r.err,
      /warning: the adapter handles onTyping and onReceipt but .*registration\.yaml sets neither receive_ephemeral nor de\.sorunome\.msc2409\.push_ephemeral/,
    );
    assert.match(
      r.err,
      /warning: the adapter has third-party protocol irc-legacy not listed under protocols/,
    );
  });

  it("with encryption.allow: generate-registration adds the opt-ins, validate names what a registration lacks and the homeserver's flags", async () => {
    const encryption = "encryption:\n  allow: true\n  pickleKey: 0123456789abcdef0123";
    await writeFile(config, configYaml());
    await generate();
    await writeFile(config, configYaml({ extra: encryption }));
    const old = await run("validate", "--config", config);
    assert.equal(old.code, 1, "a registration made before encryption was allowed lacks the opt-ins");
    assert.match(old.err, /registration\.yaml: org\.matrix\.msc3202: must be true with encryption\.allow/);
    assert.match(old.err, /registration\.yaml: io\.element\.msc4190: must be true with encryption\.allow/);
    const made = await run("generate-registration", "--config", config, "--force");
    assert.equal(made.code, 0, made.err);
    assert.match(made.out, /msc3202_transaction_extensions: true/);
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    for (const key of ENCRYPTION_REGISTRATION_KEYS) assert.equal(reg[key], true, key);
    const ok = await run("validate", "--config", config);
    assert.equal(ok.code, 0, ok.err);
    assert.match(
      ok.err,
      /warning: encryption\.allow needs, in the homeserver's homeserver\.yaml .*msc2409_to_device_messages_enabled: true, msc3202_transaction_extensions: true/,
    );
    delete reg.receive_ephemeral;
    delete reg["de.sorunome.msc2409.push_ephemeral"];
    assert.deepEqual(checkEncryptionRegistration(reg, "r.yaml").length, 1);
  });

  it("checkRegistrationMatchesAdapter: either ephemeral flag is enough; no handlers or protocols, no warnings", async () => {
    await writeFile(config, configYaml());
    await generate();
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    const base: RemoteNetworkAdapter = {
      name: "x",
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
    };
    const typing: RemoteNetworkAdapter = { ...base, onTyping: () => Promise.resolve() };
    delete reg.receive_ephemeral;
    assert.deepEqual(checkRegistrationMatchesAdapter(typing, reg, "r.yaml"), [], "the unstable flag is set");
    reg.receive_ephemeral = true;
    delete reg["de.sorunome.msc2409.push_ephemeral"];
    assert.deepEqual(checkRegistrationMatchesAdapter(typing, reg, "r.yaml"), [], "the stable flag is set");
    delete reg.receive_ephemeral;
    assert.equal(checkRegistrationMatchesAdapter(typing, reg, "r.yaml").length, 1);
    assert.deepEqual(checkRegistrationMatchesAdapter(base, reg, "r.yaml"), [], "no typing handler");
  });

  it("passes config.example.yaml with the echo example's adapter", async () => {
    const example = await readFile(join(import.meta.dirname, "../../../config.example.yaml"), "utf8");
    const adapter = join(import.meta.dirname, "../../../examples/echo/src/adapter.ts");
    await writeFile(config, example.replace("./examples/echo/src/adapter.ts", adapter));
    await generate();
    const r = await run("validate", "--config", config);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /adapter "echo" from .*adapter\.ts \(loaded, not started\)/);
  });

  it("never prints the registration's tokens", async () => {
    await writeFile(config, configYaml());
    await generate();
    const reg = await loadRegistration(join(sub, "registration.yaml"));
    const ok = await run("validate", "--config", config);
    await writeFile(config, configYaml({ ghosts: "other_{id}" }));
    const bad = await run("validate", "--config", config);
    for (const r of [ok, bad]) {
      for (const token of [reg.as_token, reg.hs_token]) assert.ok(!(r.out + r.err).includes(token));
    }
  });
});
