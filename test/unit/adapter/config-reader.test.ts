import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AdapterConfigReader } from "../../../src/adapter/index.js";
import { ValidationError } from "../../../src/common/validation-error.js";

const opts = { known: ["server", "port", "tls", "password", "name"], expect: "a mapping with server" };

describe("AdapterConfigReader", () => {
  it("reads valid values and applies fallbacks", () => {
    const r = new AdapterConfigReader({ server: "irc.example.org", tls: true }, opts);
    assert.equal(r.string("server", { required: true }), "irc.example.org");
    assert.equal(r.integer("port", 6667, 1, 65535), 6667);
    assert.equal(r.boolean("tls", false), true);
    assert.equal(r.boolean("missing-but-unread"), undefined);
    assert.equal(r.string("name"), undefined);
    r.done();
  });

  it("reports every problem at once, naming key and value, never a secret", () => {
    const r = new AdapterConfigReader(
      { server: "two\nlines", port: 70000, tls: "yes", password: 12345, prot: 1 },
      opts,
    );
    r.string("server", { required: true });
    r.integer("port", 6667, 1, 65535);
    r.boolean("tls", false);
    r.string("password", { secret: true });
    r.problem("custom", "is checked by the adapter");
    assert.throws(
      () => r.done(),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.source, "adapter.config");
        assert.deepEqual(
          err.problems.map((p) => p.path),
          ["prot", "server", "port", "tls", "password", "custom"],
        );
        assert.match(err.message, /port: must be an integer from 1 to 65535, got number 70000/);
        assert.match(err.message, /tls: must be true or false, got "yes"/);
        assert.match(err.message, /password: must be a non-empty string on one line, got number/);
        assert.ok(!err.message.includes("12345"), "a secret's value is never shown");
        assert.match(err.message, /prot: unknown key \(known: server, port, tls, password, name\)/);
        return true;
      },
    );
  });

  it("refuses a section that is not a mapping, saying what it must be", () => {
    for (const raw of [null, undefined, "x", [1]]) {
      assert.throws(
        () => new AdapterConfigReader(raw, opts),
        /adapter\.config: \(document\): must be a mapping with server/,
      );
    }
  });

  it("requires a required string", () => {
    const r = new AdapterConfigReader({}, opts);
    assert.equal(r.string("server", { required: true }), undefined);
    assert.throws(() => r.done(), /server: must be a non-empty string on one line, got missing/);
  });
});
