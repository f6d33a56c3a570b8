import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeLocalpart, IdTemplate, unescapeLocalpart } from "../../../src/registration/index.js";

const VALID_LOCALPART = /^[a-z0-9._=\-/]*$/;

describe("localpart escaping", () => {
  it("escapes known examples per the specification's mapping", () => {
    assert.equal(escapeLocalpart("Alice|away"), "_alice=7caway");
    assert.equal(escapeLocalpart("snake_case"), "snake__case");
    assert.equal(escapeLocalpart("a=b"), "a=3db");
    assert.equal(escapeLocalpart("é"), "=c3=a9");
    assert.equal(escapeLocalpart("#chan"), "=23chan");
    assert.equal(escapeLocalpart("a.b-c/d"), "a.b-c/d");
  });

  it("round-trips many random unicode ids into valid localparts", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (id) => {
        const lp = escapeLocalpart(id);
        assert.match(lp, VALID_LOCALPART);
        assert.equal(unescapeLocalpart(lp), id);
      }),
      { numRuns: 5000 },
    );
  });

  it("is one-to-one: distinct ids never collide", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii" }), fc.string({ unit: "grapheme-ascii" }), (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(escapeLocalpart(a), escapeLocalpart(b));
      }),
      { numRuns: 3000 },
    );
  });

  it("rejects strings escapeLocalpart cannot produce", () => {
    for (const bad of [
      "A",
      "_",
      "_1",
      "=",
      "=4",
      "=zz",
      "=41" /* non-canonical 'A' */,
      "=61",
      "=ff",
      "a b",
      "ü",
    ]) {
      assert.equal(unescapeLocalpart(bad), null, bad);
    }
  });

  it("refuses unpaired surrogates rather than mapping them lossily", () => {
    assert.throws(() => escapeLocalpart("a\uD800b"), /unpaired UTF-16 surrogates/);
  });
});

describe("id templates", () => {
  const t = new IdTemplate("irc_{id}", "example.org");

  it("formats and parses user ids and aliases", () => {
    assert.equal(t.userId("Alice"), "@irc__alice:example.org");
    assert.equal(t.alias("#chan"), "#irc_=23chan:example.org");
    assert.equal(t.parseUserId("@irc__alice:example.org"), "Alice");
    assert.equal(t.parseAlias("#irc_=23chan:example.org"), "#chan");
  });

  it("parses only what it made", () => {
    assert.equal(t.parseUserId("@irc_alice:other.org"), null);
    assert.equal(t.parseUserId("#irc_alice:example.org"), null);
    assert.equal(t.parseUserId("@xmpp_alice:example.org"), null);
    assert.equal(t.parseUserId("@irc_Alice:example.org"), null);
    assert.equal(t.parseUserId("@irc_alice"), null);
  });

  it("round-trips random ids through user ids, with a suffix and a port in the domain", () => {
    const s = new IdTemplate("x_{id}_r", "hs.example.org:8448");
    const regex = new RegExp(`^(?:${s.userRegexSource()})`);
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 30 }), (id) => {
        const userId = s.userId(id);
        assert.equal(s.parseUserId(userId), id);
        assert.ok(regex.test(userId), `${userId} outside the generated namespace`);
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses ids past the 255-byte limit and bad templates", () => {
    assert.throws(() => t.userId("é".repeat(100)), /longer than the 255 bytes/);
    assert.throws(() => new IdTemplate("irc_", "e.org"), /must contain \{id\} exactly once/);
    assert.throws(() => new IdTemplate("IRC_{id}", "e.org"), /may only use/);
    assert.throws(() => new IdTemplate("irc_{id}", "bad domain"), /not a server name/);
  });
});
