import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { commandLine, parseArguments, usage } from "../../../src/commands/parse.js";
import { UserFacingError } from "../../../src/users/errors.js";

describe("commandLine", () => {
  it("reads every message in the management room (no prefix)", () => {
    assert.deepEqual(commandLine("  Login  password ", undefined), { name: "login", rest: "password" });
    assert.deepEqual(commandLine("help", undefined), { name: "help", rest: "" });
    assert.equal(commandLine("   ", undefined), null);
  });

  it("needs the prefix and a space elsewhere; the bare prefix is help", () => {
    assert.deepEqual(commandLine("!irc nick alice_m", "!irc"), { name: "nick", rest: "alice_m" });
    assert.deepEqual(commandLine("!irc", "!irc"), { name: "help", rest: "" });
    assert.equal(commandLine("!ircnick alice", "!irc"), null);
    assert.equal(commandLine("hello !irc nick", "!irc"), null);
  });
});

describe("parseArguments", () => {
  const args = [
    { name: "nick" },
    { name: "count", type: "integer" as const, optional: true },
    { name: "reason", rest: true, optional: true },
  ];

  it("takes words in order, the rest argument the remainder", () => {
    assert.deepEqual(parseArguments("kick", args, "bob 3 being  rude"), {
      nick: "bob",
      count: 3,
      reason: "being  rude",
    });
    assert.deepEqual(parseArguments("kick", args, "bob"), { nick: "bob" });
  });

  it("names what is missing or wrong and shows the usage", () => {
    assert.throws(
      () => parseArguments("kick", args, ""),
      (err: unknown) =>
        err instanceof UserFacingError &&
        err.code === "bad_input" &&
        err.message === "missing <nick>. Usage: `kick <nick> [count] [reason...]`",
    );
    assert.throws(
      () => parseArguments("kick", args, "bob three"),
      /<count> must be a whole number, got "three"/,
    );
    assert.throws(() => parseArguments("nick", [{ name: "new" }], "a b"), /unexpected "b"/);
  });

  it("shows usages", () => {
    assert.equal(usage("logout", [{ name: "login", optional: true }]), "logout [login]");
  });
});
