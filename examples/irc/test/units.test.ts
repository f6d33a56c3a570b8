/**
 * The IRC adapter's pure parts: config validation, id normalisation, URI mapping, message
 * formatting and line splitting. No server needed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { ValidationError, loadAdapter, loadConfig, silentLogger } from "matrix-bridgekit";
import factory, { type IrcAdapter, type IrcConfig } from "../src/adapter.js";
import { resolveIrcConfig } from "../src/config.js";
import { channelToId, ircLower, isValidNick, nickToId, stripFormatting } from "../src/irc-ids.js";
import { splitMessage, utf8Length } from "../src/split-lines.js";
import { formatEdit, formatMessage, toIrcLines } from "../src/relay-format.js";

function problems(raw: unknown): string[] {
  try {
    resolveIrcConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail("the config was accepted");
}

describe("IRC config", () => {
  it("applies defaults", () => {
    const c = resolveIrcConfig({ server: "irc.example.org", nick: "bridge" });
    assert.equal(c.port, 6667);
    assert.equal(c.tls, false);
    assert.deepEqual(c.channels, []);
    assert.equal(c.username, "bridge");
    assert.equal(resolveIrcConfig({ server: "irc.example.org", nick: "b", tls: true }).port, 6697);
  });

  it("names every bad key and value at once", () => {
    const found = problems({
      server: "",
      nick: "9lives",
      port: "6667",
      tls: "yes",
      channels: ["chat", 3],
      colour: 1,
    });
    assert.ok(
      found.some((p) => p.startsWith("server: ")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("nick: ") && p.includes('"9lives"')),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("port: ") && p.includes('"6667"')),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("tls: ")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("channels[0]: ") && p.includes('"chat"')),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("channels[1]: ")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.startsWith("colour: unknown key")),
      found.join("\n"),
    );
    assert.equal(found.length, 7);
  });

  it("rejects a missing config and a missing nick, and never shows the password", () => {
    assert.deepEqual(problems(undefined).length, 1);
    assert.ok(
      problems({ server: "irc.example.org" }).some((p) => p.startsWith("nick: ") && p.includes("missing")),
    );
    const found = problems({ server: "irc.example.org", nick: "b", password: "", port: 70000 });
    assert.ok(found.some((p) => p.startsWith("password: ")));
    assert.ok(found.some((p) => p.startsWith("port: ") && p.includes("70000")));
    try {
      resolveIrcConfig({ server: "irc.example.org", nick: "b", password: 12345678, port: 0 });
    } catch (err) {
      assert.ok(!String(err).includes("12345678"), "the password value leaked into the error");
    }
  });

  it("the adapter factory validates its config without connecting", async () => {
    const init = (config: unknown) =>
      factory({ config: config as IrcConfig, log: silentLogger(), configDir: "." });
    await assert.rejects(async () => init({ nick: "b" }), /adapter\.config: server: /);
    const adapter = (await init({ server: "irc.example.org", nick: "b" })) as IrcAdapter;
    assert.equal(adapter.name, "irc");
  });
});

describe("config.example.yaml", () => {
  it("is a valid bridge config whose adapter loads with its adapter.config", async () => {
    const file = join(import.meta.dirname, "..", "config.example.yaml");
    const config = await loadConfig(file, {});
    assert.equal(config.bridge.ghosts, "irc_{id}");
    assert.equal(config.bridge.portals, "irc_{id}");
    const adapter = await loadAdapter(config.adapter.module, join(import.meta.dirname, ".."), {
      config: config.adapter.config,
      log: silentLogger(),
    });
    assert.equal(adapter.name, "irc");
    assert.equal((adapter as IrcAdapter).config.server, "irc.example.net");
  });
});

describe("IRC ids", () => {
  it("lowercases with the rfc1459 casemapping", () => {
    assert.equal(ircLower("Alice[Away]\\~"), "alice{away}|^");
    assert.equal(nickToId("ALICE"), nickToId("alice"));
    assert.equal(channelToId("#Chat"), "chat");
    assert.equal(stripFormatting("\x02bold\x02 \x0304,01red\x03 plain\x0f"), "bold red plain");
  });

  it("accepts RFC 2812 nicks only", () => {
    for (const nick of ["alice", "Alice|away", "[bot]", "a-1", "_x"]) assert.ok(isValidNick(nick), nick);
    for (const nick of ["", "1abc", "-x", "has space", "a,b", "a@b", "a!b"])
      assert.ok(!isValidNick(nick), nick);
  });
});

describe("IRC URIs", () => {
  const adapter = async () =>
    (await factory({
      config: { server: "irc.example.org", nick: "b" },
      log: silentLogger(),
      configDir: ".",
    })) as IrcAdapter;

  it("maps irc://server/nick to a user and irc://server/%23chan or #chan to a room", async () => {
    const a = await adapter();
    assert.equal(a.userFromUri(new URL("irc://irc.example.org/Alice")), "alice");
    assert.equal(a.userFromUri(new URL("irc://IRC.example.org:6667/alice,isnick")), "alice");
    assert.equal(a.roomFromUri(new URL("irc://irc.example.org/%23Chat")), "chat");
    assert.equal(a.roomFromUri(new URL("irc://irc.example.org/#chat")), "chat");
    assert.equal(a.roomFromUri(new URL("ircs://irc.example.org/%23chat")), "chat");
  });

  it("answers null for other servers, other ports, and the wrong kind", async () => {
    const a = await adapter();
    assert.equal(a.userFromUri(new URL("irc://irc.other.org/alice")), null);
    assert.equal(a.userFromUri(new URL("irc://irc.example.org:7000/alice")), null);
    assert.equal(a.userFromUri(new URL("https://irc.example.org/alice")), null);
    assert.equal(a.userFromUri(new URL("irc://irc.example.org/%23chat")), null);
    assert.equal(a.userFromUri(new URL("irc://irc.example.org/%E0%A4%A")), null);
    assert.equal(a.roomFromUri(new URL("irc://irc.other.org/%23chat")), null);
    assert.equal(a.roomFromUri(new URL("irc://irc.example.org/alice")), null);
    assert.equal(a.roomFromUri(new URL("irc://irc.example.org/%23a%20b")), null);
  });
});

describe("relay formatting and line splitting", () => {
  it("formats text, emote, notice, media and edits", () => {
    assert.deepEqual(formatMessage({ msgtype: "m.text", body: "hi" }, "Bob"), {
      kind: "privmsg",
      prefix: "<Bob> ",
      text: "hi",
    });
    assert.deepEqual(formatMessage({ msgtype: "m.emote", body: "waves" }, "Bob"), {
      kind: "action",
      prefix: "Bob ",
      text: "waves",
    });
    assert.equal(formatMessage({ msgtype: "m.notice", body: "n" }, "Bob").kind, "notice");
    assert.equal(
      formatMessage(
        { msgtype: "m.image", body: "cat.png", mediaUrl: "mxc://ex.org/abc" },
        "Bob",
        (mxc, name) => `https://bridge.ex.org/${mxc.slice(6)}/${name}`,
      ).text,
      "cat.png https://bridge.ex.org/ex.org/abc/cat.png",
    );
    assert.equal(
      formatMessage({ msgtype: "m.file", body: "", mediaUrl: "mxc://ex.org/abc" }, "Bob").text,
      "mxc://ex.org/abc",
    );
    assert.equal(
      formatMessage({ msgtype: "m.text", body: "x" }, "Evil\r\nPRIVMSG #x :hi").prefix,
      "<Evil PRIVMSG #x :hi> ",
    );
    assert.deepEqual(formatEdit({ body: "fixed" }, "Bob"), {
      kind: "privmsg",
      prefix: "<Bob> * ",
      text: "fixed",
    });
  });

  it("builds lines that fit in 512 bytes with the server's prefix", () => {
    const lines = toIrcLines({ kind: "action", prefix: "Bob ", text: "x".repeat(2000) }, "#chan", {
      nick: "bot",
      username: "bot",
    });
    assert.ok(lines.length >= 4);
    for (const line of lines) {
      assert.ok(line.startsWith("PRIVMSG #chan :\x01ACTION Bob x") && line.endsWith("x\x01"), line);
      assert.ok(utf8Length(`:bot!~bot@${"h".repeat(63)} ${line}\r\n`) <= 512);
    }
  });

  it("splits on line breaks, at spaces when it can, and never inside a character", () => {
    assert.deepEqual(splitMessage("a\r\nb\n\nc\rd", 10), ["a", "b", "c", "d"]);
    assert.deepEqual(splitMessage("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
    assert.deepEqual(splitMessage("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    assert.deepEqual(splitMessage("ééé", 4), ["éé", "é"]);
    assert.throws(() => splitMessage("x", 3), /maxBytes/);
  });

  it("keeps every piece within the limit and loses no text (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 300 }),
        fc.integer({ min: 4, max: 80 }),
        (text, max) => {
          const line = text.replace(/[\r\n\0]/g, "");
          const pieces = splitMessage(line, max);
          for (const p of pieces) {
            assert.ok(utf8Length(p) <= max && p.length > 0 && p.isWellFormed());
          }
          assert.equal(pieces.join("").replace(/ /g, ""), line.replace(/ /g, ""));
          const dropped = line.length - pieces.join("").length;
          assert.ok(dropped >= 0 && dropped <= Math.max(0, pieces.length - 1));
        },
      ),
    );
  });
});
