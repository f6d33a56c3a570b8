import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  NamespaceMatcher,
  translatePythonRegex,
  type Registration,
} from "../../../src/registration/index.js";

function registration(namespaces: Partial<Registration["namespaces"]>): Registration {
  return {
    id: "t",
    url: null,
    as_token: "a",
    hs_token: "h",
    sender_localpart: "bot",
    namespaces: { users: [], aliases: [], rooms: [], ...namespaces },
  };
}

describe("namespace matching", () => {
  it("anchors at the start but not the end, like Python's re.match", () => {
    const m = new NamespaceMatcher(
      registration({ users: [{ regex: "@irc_", exclusive: true }] }),
      "example.org",
    );
    assert.ok(m.isUserInNamespace("@irc_alice:example.org"), "prefix regex matches longer ids");
    assert.ok(!m.isUserInNamespace("@x@irc_alice:example.org"), "not found mid-string");
    const aliases = new NamespaceMatcher(
      registration({ aliases: [{ regex: "#a$", exclusive: false }] }),
      "e.org",
    );
    assert.ok(!aliases.isAliasInNamespace("#a:e.org"), "an explicit $ still anchors the end");
  });

  it("keeps an alternation inside the start anchor", () => {
    const m = new NamespaceMatcher(
      registration({ users: [{ regex: "@a_.*|@b_.*", exclusive: true }] }),
      "e.org",
    );
    assert.ok(m.isUserInNamespace("@b_x:e.org"));
    assert.ok(!m.isUserInNamespace("@zz@b_x:e.org"), "the second branch is anchored too");
  });

  it("tells exclusive from shared entries", () => {
    const m = new NamespaceMatcher(
      registration({
        users: [
          { regex: "@_irc_.*", exclusive: true },
          { regex: "@shared_.*", exclusive: false },
        ],
        rooms: [{ regex: "!only:e\\.org", exclusive: true }],
      }),
      "e.org",
    );
    assert.ok(m.isUserExclusive("@_irc_bob:e.org"));
    assert.ok(m.isUserInNamespace("@shared_bob:e.org"));
    assert.ok(!m.isUserExclusive("@shared_bob:e.org"));
    assert.ok(m.isRoomExclusive("!only:e.org"));
    assert.ok(!m.isRoomInNamespace("!other:e.org"));
  });

  it("matches only local users, whatever the regex says", () => {
    const m = new NamespaceMatcher(registration({ users: [{ regex: "@irc_.*", exclusive: true }] }), "e.org");
    assert.ok(m.isUserInNamespace("@irc_a:e.org"));
    assert.ok(!m.isUserInNamespace("@irc_a:evil.org"));
    assert.ok(!m.isUserInNamespace("@irc_a:e.org.evil.org"));
    assert.ok(!m.mayActAs("@irc_a:evil.org"));
  });

  it("lets the framework act as the bot and namespace users only", () => {
    const m = new NamespaceMatcher(registration({ users: [{ regex: "@irc_.*", exclusive: true }] }), "e.org");
    assert.ok(m.mayActAs("@bot:e.org"));
    assert.ok(!m.mayActAs("@bot:other.org"));
    assert.ok(!m.mayActAs("@alice:e.org"));
  });

  it("applies the specification's interest rule", () => {
    const m = new NamespaceMatcher(
      registration({
        users: [{ regex: "@irc_.*", exclusive: true }],
        aliases: [{ regex: "#irc_.*", exclusive: true }],
        rooms: [{ regex: "!bridged", exclusive: false }],
      }),
      "e.org",
    );
    assert.ok(m.isInterested({ sender: "@irc_a:e.org", room_id: "!r:e.org" }));
    assert.ok(m.isInterested({ sender: "@bot:e.org", room_id: "!r:e.org" }));
    assert.ok(m.isInterested({ type: "m.room.member", state_key: "@irc_b:e.org", sender: "@alice:e.org" }));
    assert.ok(m.isInterested({ type: "m.room.member", state_key: "@bot:e.org", sender: "@alice:e.org" }));
    assert.ok(!m.isInterested({ type: "m.room.topic", state_key: "@irc_b:e.org", sender: "@alice:e.org" }));
    assert.ok(m.isInterested({ sender: "@alice:e.org", room_id: "!bridged:e.org" }));
    assert.ok(m.isInterested({ sender: "@alice:e.org", room_id: "!x:e.org" }, ["#irc_chan:e.org"]));
    assert.ok(!m.isInterested({ sender: "@alice:e.org", room_id: "!x:e.org" }, ["#other:e.org"]));
  });

  it("translates Python-only regex syntax", () => {
    assert.equal(translatePythonRegex("(?P<n>a)(?P=n)"), "(?<n>a)\\k<n>");
    assert.equal(translatePythonRegex("\\A@x\\Z"), "^@x$(?![\\s\\S])");
    assert.equal(translatePythonRegex("\\\\A"), "\\\\A", "an escaped backslash is left alone");
    const m = new NamespaceMatcher(
      registration({ users: [{ regex: "@(?P<p>irc)_(?P=p)", exclusive: true }] }),
      "e.org",
    );
    assert.ok(m.isUserInNamespace("@irc_irc:e.org"));
  });
});
