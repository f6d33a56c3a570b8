import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadRegistration, validateRegistration } from "../../../src/registration/index.js";
import { ValidationError } from "../../../src/common/validation-error.js";

const fixtures = join(import.meta.dirname, "../../fixtures/registration");

describe("registration validation", () => {
  it("accepts the complete valid fixture", async () => {
    const reg = await loadRegistration(join(fixtures, "valid.yaml"));
    assert.equal(reg.id, "irc");
    assert.equal(reg.namespaces.users[0]?.regex, "@irc_.*:example\\.org");
  });

  // Each invalid fixture breaks exactly one rule and says, on its first line, which key path
  // and message that rule must produce: `# expect: <path> :: <message fragment>`.
  const invalid = readdirSync(join(fixtures, "invalid")).filter((f) => f.endsWith(".yaml"));
  it("has a fixture for every rule", () => {
    assert.ok(invalid.length >= 30, `only ${invalid.length} fixtures`);
  });
  for (const name of invalid) {
    it(`rejects invalid/${name} naming the file, key and problem`, async () => {
      const file = join(fixtures, "invalid", name);
      const header = /^# expect: (.*?) :: (.*)$/m.exec(readFileSync(file, "utf8"));
      assert.ok(header, `${name} has no "# expect:" line`);
      const [, path, fragment] = header as unknown as [string, string, string];
      const err = await loadRegistration(file).then(
        () => assert.fail(`${name} loaded without error`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
      assert.equal(err.problems.length, 1, `expected exactly one problem:\n${err.message}`);
      assert.equal(err.problems[0]?.path, path);
      assert.ok(
        err.problems[0]?.message.includes(fragment),
        `"${err.problems[0]?.message}" lacks "${fragment}"`,
      );
      assert.ok(err.message.includes(file), "the message names the file");
    });
  }

  it("reports every problem at once, not only the first", () => {
    const problems = validateRegistration({
      id: "a|b",
      url: 5,
      as_token: "",
      sender_localpart: "bad bot",
      namespaces: { users: [{ regex: "(", exclusive: "no" }] },
      protocols: [1],
    });
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      "as_token",
      "hs_token",
      "id",
      "namespaces.users[0].exclusive",
      "namespaces.users[0].regex",
      "protocols[0]",
      "sender_localpart",
      "url",
    ]);
  });

  it("accepts url: null and absent namespace lists, as Synapse does", () => {
    const problems = validateRegistration({
      id: "x",
      url: null,
      as_token: "a",
      hs_token: "b",
      sender_localpart: "bot",
      namespaces: {},
    });
    assert.deepEqual(problems, []);
  });

  it("never echoes a whole long value into an error", () => {
    const secret = "s".repeat(200);
    const [problem] = validateRegistration({
      id: "x",
      url: secret,
      as_token: "a",
      hs_token: "b",
      sender_localpart: "bot",
      namespaces: {},
    });
    assert.ok(problem);
    assert.ok(!problem.message.includes(secret));
  });
});
