import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ENCRYPTION_REGISTRATION_KEYS,
  generateRegistration,
  generateToken,
  NamespaceMatcher,
  validateRegistration,
} from "../../../src/registration/index.js";

const IRC = { id: "irc", url: null, domain: "example.org", senderLocalpart: "ircbot", ghosts: "irc_{id}" };

describe("registration generation", () => {
  it("makes 32-byte base64url tokens, all different", () => {
    const tokens = new Set(Array.from({ length: 1000 }, generateToken));
    assert.equal(tokens.size, 1000);
    for (const t of tokens) {
      assert.match(t, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(t, "base64url").length, 32);
    }
  });

  it("builds a valid, exclusive, unrate-limited registration from templates", () => {
    const reg = generateRegistration({
      id: "irc",
      url: "http://127.0.0.1:9000",
      domain: "example.org",
      senderLocalpart: "ircbot",
      ghosts: "irc_{id}",
      portals: "irc_{id}",
      protocols: ["irc"],
    });
    assert.deepEqual(validateRegistration(reg), []);
    assert.notEqual(reg.as_token, reg.hs_token);
    assert.equal(reg.rate_limited, false);
    assert.deepEqual(reg.namespaces.users, [{ regex: "@irc_.*:example\\.org", exclusive: true }]);
    assert.deepEqual(reg.namespaces.aliases, [{ regex: "#irc_.*:example\\.org", exclusive: true }]);
    assert.deepEqual(reg.protocols, ["irc"]);
    const m = new NamespaceMatcher(reg, "example.org");
    assert.ok(m.isUserExclusive("@irc__alice:example.org"));
    assert.ok(!m.isUserInNamespace("@irc_alice:exampleXorg"), "the domain's dot is escaped");
    assert.ok(m.isAliasExclusive("#irc_=23chan:example.org"));
    assert.equal(reg.receive_ephemeral, undefined, "ephemeral data only when asked for");
  });

  it("asks for ephemeral data with the stable flag and the older unstable one", () => {
    const reg = generateRegistration({
      id: "irc",
      url: null,
      domain: "example.org",
      senderLocalpart: "ircbot",
      ghosts: "irc_{id}",
      receiveEphemeral: true,
    });
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["de.sorunome.msc2409.push_ephemeral"], true);
    assert.deepEqual(validateRegistration(reg), []);
  });

  it("with encryption, adds MSC3202, MSC4190 and both ephemeral opt-ins", () => {
    const reg = generateRegistration({ ...IRC, encryption: true });
    assert.deepEqual(
      ENCRYPTION_REGISTRATION_KEYS.map((key) => [key, reg[key]]),
      ENCRYPTION_REGISTRATION_KEYS.map((key) => [key, true]),
    );
    assert.deepEqual(ENCRYPTION_REGISTRATION_KEYS.length, 4);
    assert.deepEqual(validateRegistration(reg), []);
  });

  it("escapes regex characters in the domain and template", () => {
    const reg = generateRegistration({
      id: "x",
      url: null,
      domain: "my-host.example.org:8448",
      senderLocalpart: "bot",
      ghosts: "x.y_{id}",
    });
    assert.equal(reg.namespaces.users[0]?.regex, "@x\\.y_.*:my\\-host\\.example\\.org:8448");
    assert.deepEqual(reg.namespaces.aliases, []);
  });
});
