import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  checkDoublePuppetRegistration,
  generateDoublePuppetRegistration,
  generateRegistration,
  localUsersRegexSource,
  NamespaceMatcher,
  validateRegistration,
  type Registration,
} from "../../../src/registration/index.js";

const DOMAIN = "my-host.example.org";

function main(): Registration {
  return generateRegistration({
    id: "irc",
    url: "http://127.0.0.1:9000",
    domain: DOMAIN,
    senderLocalpart: "ircbot",
    ghosts: "irc_{id}",
  });
}

describe("double-puppet registration generation", () => {
  it("has url null, no rate limit, fresh distinct tokens, a random sender and a non-exclusive namespace of every local user", () => {
    const reg = generateDoublePuppetRegistration({ domain: DOMAIN });
    assert.deepEqual(validateRegistration(reg), []);
    assert.equal(reg.id, "doublepuppet");
    assert.equal(reg.url, null);
    assert.equal(reg.rate_limited, false);
    assert.notEqual(reg.as_token, reg.hs_token);
    assert.match(reg.sender_localpart, /^doublepuppet_[0-9a-f]{24}$/);
    assert.deepEqual(reg.namespaces, {
      users: [{ regex: "@.*:my\\-host\\.example\\.org", exclusive: false }],
      aliases: [],
      rooms: [],
    });
    const m = new NamespaceMatcher(reg, DOMAIN);
    for (const user of [
      "@alice:my-host.example.org",
      "@_irc_bob:my-host.example.org",
      "@0:my-host.example.org",
    ]) {
      assert.ok(m.isUserInNamespace(user), user);
      assert.ok(!m.isUserExclusive(user), user);
    }
    assert.ok(!m.isUserInNamespace("@alice:myXhost.example.org"), "the dots and dash are escaped");
    assert.ok(!m.isUserInNamespace("@alice:other.org"), "only local users");
  });

  it("makes new tokens and a new sender every time; takes an id", () => {
    const a = generateDoublePuppetRegistration({ domain: DOMAIN });
    const b = generateDoublePuppetRegistration({ domain: DOMAIN, id: "dp2" });
    assert.equal(b.id, "dp2");
    assert.notEqual(a.as_token, b.as_token);
    assert.notEqual(a.hs_token, b.hs_token);
    assert.notEqual(a.sender_localpart, b.sender_localpart);
  });

  it("refuses a domain that is no server name", () => {
    assert.throws(() => generateDoublePuppetRegistration({ domain: "bad domain" }), /is not a server name/);
    assert.throws(() => localUsersRegexSource(""), /is not a server name/);
  });
});

describe("checkDoublePuppetRegistration", () => {
  it("passes a generated one, also beside the main registration", () => {
    const reg = generateDoublePuppetRegistration({ domain: DOMAIN });
    assert.deepEqual(checkDoublePuppetRegistration(reg, { domain: DOMAIN, main: main() }), []);
  });

  it("names each unfit key: a url, an exclusive entry, a namespace that misses users, another domain", () => {
    const reg = generateDoublePuppetRegistration({ domain: DOMAIN });
    reg.url = "http://127.0.0.1:9001";
    reg.namespaces.users = [
      { regex: "@alice.*:my\\-host\\.example\\.org", exclusive: false },
      { regex: "@.*:my\\-host\\.example\\.org", exclusive: true },
    ];
    const problems = checkDoublePuppetRegistration(reg, { domain: DOMAIN });
    assert.deepEqual(
      problems.map((p) => p.path),
      ["url", "namespaces.users[1].exclusive", "namespaces.users"],
    );
    assert.match(problems[0]!.message, /must be null/);
    assert.match(problems[1]!.message, /must be false/);
    assert.match(problems[2]!.message, /@bob\.smith_2:my-host\.example\.org is outside it/);
    assert.match(problems[2]!.message, /use regex "@\.\*:my\\-host\\\.example\\\.org", exclusive: false/);

    const elsewhere = generateDoublePuppetRegistration({ domain: "other.org" });
    assert.deepEqual(
      checkDoublePuppetRegistration(elsewhere, { domain: DOMAIN }).map((p) => p.path),
      ["namespaces.users"],
    );
  });

  it("refuses the main registration's id and any of its tokens, naming the main file", () => {
    const m = main();
    const reg = generateDoublePuppetRegistration({ domain: DOMAIN, id: "irc" });
    reg.as_token = m.hs_token;
    reg.hs_token = m.as_token;
    const problems = checkDoublePuppetRegistration(reg, {
      domain: DOMAIN,
      main: m,
      mainSource: "/etc/reg.yaml",
    });
    assert.deepEqual(
      problems.map((p) => p.path),
      ["id", "as_token", "hs_token"],
    );
    for (const p of problems) assert.match(p.message, /\/etc\/reg\.yaml/);
    for (const p of problems) assert.ok(!p.message.includes(m.as_token) && !p.message.includes(m.hs_token));
  });
});
