import { describe, it, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run-cli.js";
import { loadRegistration, saveRegistration } from "../../../src/registration/index.js";

const adapter = join(import.meta.dirname, "../../fixtures/config/adapters/good.js");

/** A bridge config on example.org; `doublePuppet` is the doublePuppet.registration line, if any. */
function config(doublePuppet?: string): string {
  return `homeserver: { url: "http://127.0.0.1:8008", domain: example.org }
appservice: { port: 9123 }
store: "memory://"
bridge: { ghosts: "irc_{id}" }
adapter: { module: ${JSON.stringify(adapter)}, config: { server: irc.example.org } }
${doublePuppet === undefined ? "" : `doublePuppet: { registration: ${JSON.stringify(doublePuppet)} }`}
`;
}

let dir: string;
let sub: string;
let configPath: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-dp-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  sub = await mkdtemp(join(dir, "case-"));
  configPath = join(sub, "config.yaml");
});

async function ok(...argv: string[]): Promise<{ out: string; err: string }> {
  const r = await run(...argv);
  assert.equal(r.code, 0, r.err);
  return r;
}

/** `bridgekit generate-registration --double-puppet ...args`. */
const runDp = (...args: string[]) => run("generate-registration", "--double-puppet", ...args);
const okDp = (...args: string[]) => ok("generate-registration", "--double-puppet", ...args);

describe("bridgekit generate-registration --double-puppet", () => {
  it("from --domain: writes doublepuppet.yaml, mode 0600, and says what to do with it, no token printed", async () => {
    const output = join(sub, "dp.yaml");
    const r = await okDp("--domain", "my-host.example.org", "--output", output);
    assert.equal((await stat(output)).mode & 0o777, 0o600);
    const reg = await loadRegistration(output);
    assert.equal(reg.url, null);
    assert.equal(reg.id, "doublepuppet");
    assert.equal(reg.rate_limited, false);
    assert.deepEqual(reg.namespaces.users, [{ regex: "@.*:my\\-host\\.example\\.org", exclusive: false }]);
    assert.match(r.out, /wrote .*dp\.yaml \(mode 0600\): a double-puppet registration/);
    assert.match(r.out, /app_service_config_files/);
    assert.match(
      r.out,
      new RegExp(`set doublePuppet\\.registration: ${output.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`),
    );
    assert.ok(!r.out.includes(reg.as_token) && !r.out.includes(reg.hs_token));
  });

  it("with --config: the domain comes from it, the file goes to doublePuppet.registration or beside the registration", async () => {
    await writeFile(configPath, config());
    const beside = await okDp("--config", configPath, "--id", "dp-irc");
    const reg = await loadRegistration(join(sub, "doublepuppet.yaml"));
    assert.equal(reg.id, "dp-irc");
    assert.deepEqual(reg.namespaces.users, [{ regex: "@.*:example\\.org", exclusive: false }]);
    assert.match(beside.out, /set doublePuppet\.registration/);

    await writeFile(configPath, config("secrets/dp.yaml"));
    await mkdir(join(sub, "secrets"));
    const named = await okDp("--config", configPath);
    await loadRegistration(join(sub, "secrets", "dp.yaml"));
    assert.match(named.out, /The config's doublePuppet\.registration already names it/);
  });

  it("refuses to overwrite without --force, and rotates the tokens with it", async () => {
    const output = join(sub, "dp.yaml");
    await okDp("--domain", "example.org", "--output", output);
    const first = await loadRegistration(output);
    const again = await runDp("--domain", "example.org", "--output", output);
    assert.equal(again.code, 1);
    assert.match(again.err, /exists; not overwriting it/);
    assert.equal((await loadRegistration(output)).as_token, first.as_token);
    await okDp("--domain", "example.org", "--output", output, "--force");
    assert.notEqual((await loadRegistration(output)).as_token, first.as_token);
  });

  it("usage errors: no domain, flags that do not apply, a bad domain or id", async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /missing --domain \(or give --config\)/],
      [["--domain", "example.org", "--url", "http://x:1"], /--url cannot be used with --double-puppet/],
      [["--domain", "example.org", "--sender", "x", "--prefix", "y"], /--sender and --prefix cannot be used/],
      [["--domain", "bad domain"], /is not a server name/],
      [["--domain", "example.org", "--id", "a|b"], /id: must not contain "\|"/],
    ];
    for (const [args, message] of cases) {
      const r = await runDp("--output", join(sub, "never.yaml"), ...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, message);
    }
    await writeFile(configPath, config());
    const clash = await runDp("--config", configPath, "--domain", "a.b");
    assert.equal(clash.code, 2);
    assert.match(clash.err, /--domain cannot be used with --config/);
    await assert.rejects(stat(join(sub, "never.yaml")));
  });
});

describe("bridgekit validate with doublePuppet.registration", () => {
  beforeEach(async () => {
    await writeFile(configPath, config("doublepuppet.yaml"));
    await ok("generate-registration", "--config", configPath);
  });

  it("passes a generated one and names it in the summary", async () => {
    await okDp("--config", configPath);
    const r = await ok("validate", "--config", configPath);
    assert.match(r.out, /double puppeting .*doublepuppet\.yaml: id doublepuppet, users @\.\*:example\\\.org/);
  });

  it("reports a missing file with the command that makes one", async () => {
    const r = await run("validate", "--config", configPath);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /doublePuppet\.registration: .*doublepuppet\.yaml: \(document\): file not found \(make one: bridgekit generate-registration --double-puppet --config/,
    );
  });

  it("reports an invalid file by key", async () => {
    await writeFile(join(sub, "doublepuppet.yaml"), "id: dp\nurl: null\n");
    const r = await run("validate", "--config", configPath);
    assert.equal(r.code, 1);
    assert.match(r.err, /doublepuppet\.yaml: as_token: is required/);
  });

  it("reports each unfit key with the file: url, exclusive, coverage, tokens and id shared with the main registration", async () => {
    await okDp("--config", configPath);
    const path = join(sub, "doublepuppet.yaml");
    const main = await loadRegistration(join(sub, "registration.yaml"));
    const reg = await loadRegistration(path);
    reg.id = main.id;
    reg.url = "http://127.0.0.1:1";
    reg.as_token = main.as_token;
    reg.namespaces.users = [{ regex: "@irc_.*:example\\.org", exclusive: true }];
    await saveRegistration(path, reg);
    const r = await run("validate", "--config", configPath);
    assert.equal(r.code, 1);
    for (const message of [
      /doublepuppet\.yaml: url: must be null/,
      /doublepuppet\.yaml: namespaces\.users\[0\]\.exclusive: must be false/,
      /doublepuppet\.yaml: namespaces\.users: must cover every user of example\.org/,
      /doublepuppet\.yaml: id: must differ from the id of .*registration\.yaml/,
      /doublepuppet\.yaml: as_token: must differ from the tokens of .*registration\.yaml/,
    ]) {
      assert.match(r.err, message);
    }
    assert.ok(!(r.out + r.err).includes(main.as_token), "no token is printed");
  });
});
