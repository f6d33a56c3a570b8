import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { atLeast, Permissions } from "../../../src/users/permissions.js";

describe("Permissions", () => {
  const p = new Permissions({
    "*": "relay",
    "example.org": "user",
    "@boss:example.org": "admin",
    "@banned:example.org": "relay",
  });

  it("takes the user id first, then the server name, then *", () => {
    assert.equal(p.level("@boss:example.org"), "admin");
    assert.equal(p.level("@alice:example.org"), "user");
    assert.equal(p.level("@banned:example.org"), "relay");
    assert.equal(p.level("@eve:elsewhere.net"), "relay");
  });

  it("gives nobody anything without a matching entry", () => {
    const strict = new Permissions({ "example.org": "user" });
    assert.equal(strict.level("@eve:elsewhere.net"), null);
    assert.equal(strict.level("@alice:example.org"), "user");
  });

  it("matches the server name exactly, port included, never as a suffix", () => {
    const q = new Permissions({ "example.org": "user", "localhost:8448": "admin" });
    assert.equal(q.level("@a:evil-example.org"), null);
    assert.equal(q.level("@a:sub.example.org"), null);
    assert.equal(q.level("@a:localhost:8448"), "admin");
    assert.equal(q.level("@a:localhost"), null);
  });

  it("is not fooled by keys of Object.prototype", () => {
    const q = new Permissions({});
    assert.equal(q.level("@a:constructor"), null);
    assert.equal(q.level("toString"), null);
  });

  it("orders levels", () => {
    assert.ok(atLeast("admin", "user"));
    assert.ok(atLeast("user", "user"));
    assert.ok(!atLeast("relay", "user"));
    assert.ok(!atLeast(null, "relay"));
  });
});
