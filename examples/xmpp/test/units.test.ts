/**
 * The XMPP adapter's pure parts: config validation, room ids, URI mapping, stanza parsing and
 * building, and message formatting. No server needed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import { ValidationError, loadAdapter, loadConfig, silentLogger } from "matrix-bridgekit";
import factory, { type XmppAdapter, type XmppConfig } from "../src/adapter.js";
import { resolveXmppConfig, isLoopbackHost } from "../src/config.js";
import { isValidNick, isValidRoomId, normalizeRoomId } from "../src/xmpp-ids.js";
import {
  groupMessage,
  joinPresence,
  messageRemoteId,
  parseMucStanza,
  roomNameFromDisco,
  type GroupMessage,
} from "../src/muc-stanzas.js";
import { formatEdit, formatMessage, safeName } from "../src/relay-format.js";

const MUC = "conference.example.org";
const BASE = {
  service: "xmpps://xmpp.example.org",
  domain: "example.org",
  username: "bridge",
  password: "s3cret-Passw0rd",
  mucDomain: MUC,
  nick: "MatrixBridge",
};

function problems(raw: unknown): string[] {
  try {
    resolveXmppConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail("the config was accepted");
}

describe("XMPP config", () => {
  it("applies defaults", () => {
    const c = resolveXmppConfig(BASE);
    assert.deepEqual(c.rooms, []);
    assert.equal(c.resource, "bridgekit");
    assert.equal(c.allowInsecure, false);
    assert.equal(c.timeoutMs, 15_000);
    assert.equal(c.reconnectDelayMs, 1000);
    assert.equal(c.reconnectMaxDelayMs, 60_000);
    assert.equal(c.maxRooms, 200);
  });

  it("names every missing required key at once", () => {
    const found = problems({});
    for (const key of ["service", "domain", "username", "password", "mucDomain", "nick"]) {
      assert.ok(
        found.some((p) => p.startsWith(`${key}: must be a non-empty string`)),
        `${key} not reported: ${found.join("; ")}`,
      );
    }
    assert.match(problems("nope")[0] ?? "", /^: must be a mapping/);
  });

  it("names bad values with the key and the value found, but never the password", () => {
    const found = problems({
      ...BASE,
      service: "http://xmpp.example.org",
      mucDomain: "not a domain",
      nick: " padded",
      password: 123456789,
      timeoutMs: 5,
      rooms: ["lobby", "bad room", "x@elsewhere.org", 7],
      surprise: true,
    });
    const text = found.join("\n");
    assert.match(
      text,
      /^service: must be xmpp:\/\/host\[:port\] or xmpps:\/\/host\[:port\], got "http:\/\/xmpp\.example\.org"$/m,
    );
    assert.match(text, /^mucDomain: is not a domain name/m);
    assert.match(text, /^nick: is not a valid occupant nick/m);
    assert.match(text, /^password: must be a non-empty string on one line, got number$/m);
    assert.match(text, /^timeoutMs: must be an integer from 100 to 600000, got number 5$/m);
    assert.match(text, /^rooms\[1\]: is not a valid room name/m);
    assert.match(text, /^rooms\[2\]: is on another service than mucDomain/m);
    assert.match(text, /^rooms\[3\]: must be a room name/m);
    assert.match(text, /^surprise: unknown key/m);
    assert.ok(!text.includes("123456789"), "the password leaked into the error");
    assert.ok(
      !problems({ ...BASE, nick: "" })
        .join("\n")
        .includes(BASE.password),
    );
  });

  it("normalises rooms and allows an unencrypted login only on loopback unless told", () => {
    const c = resolveXmppConfig({ ...BASE, rooms: ["Lobby", `tea@${MUC.toUpperCase()}`, "lobby"] });
    assert.deepEqual(c.rooms, ["lobby", "tea"]);
    assert.equal(resolveXmppConfig({ ...BASE, service: "xmpp://127.0.0.1:5222" }).allowInsecure, true);
    assert.equal(resolveXmppConfig({ ...BASE, service: "xmpp://[::1]:5222" }).allowInsecure, true);
    assert.equal(resolveXmppConfig({ ...BASE, service: "xmpp://localhost" }).allowInsecure, true);
    assert.equal(resolveXmppConfig({ ...BASE, service: "xmpp://xmpp.example.org" }).allowInsecure, false);
    assert.equal(
      resolveXmppConfig({ ...BASE, service: "xmpp://127.0.0.1", allowInsecure: false }).allowInsecure,
      false,
    );
    assert.ok(
      isLoopbackHost("127.1.2.3") && !isLoopbackHost("128.0.0.1") && !isLoopbackHost("localhost.evil"),
    );
    assert.match(
      problems({ ...BASE, reconnectDelayMs: 5000, reconnectMaxDelayMs: 1000 }).join(),
      /reconnectMaxDelayMs/,
    );
  });

  it("the factory validates without connecting", async () => {
    await assert.rejects(
      Promise.resolve().then(() =>
        factory({
          config: { ...BASE, mucDomain: 3 } as unknown as XmppConfig,
          log: silentLogger(),
          configDir: ".",
        }),
      ),
      /adapter\.config: mucDomain: must be a non-empty string on one line, got number 3/,
    );
  });
});

describe("config.example.yaml", () => {
  it("is a valid bridge config whose adapter loads with its adapter.config", async () => {
    const file = join(import.meta.dirname, "..", "config.example.yaml");
    const config = await loadConfig(file, {});
    assert.equal(config.bridge.ghosts, "xmpp_{id}");
    assert.equal(config.bridge.portals, "xmpp_{id}");
    const adapter = await loadAdapter(config.adapter.module, join(import.meta.dirname, ".."), {
      config: config.adapter.config,
      log: silentLogger(),
    });
    assert.equal(adapter.name, "xmpp");
    assert.equal((adapter as XmppAdapter).config.mucDomain, "conference.example.org");
    assert.deepEqual((adapter as XmppAdapter).config.rooms, ["lobby"]);
  });
});

describe("XMPP room ids and nicks", () => {
  it("uses the canonical lower-case local part", () => {
    assert.equal(normalizeRoomId("Lobby"), "lobby");
    assert.ok(isValidRoomId("lobby") && !isValidRoomId("Lobby"));
    for (const bad of ["", "a b", "a@b", "a/b", "a:b", "a'b", 'a"b', "a<b", "a&b", "x\u0000"])
      assert.equal(normalizeRoomId(bad), null, JSON.stringify(bad));
    assert.ok(isValidNick("Alice Smith") && isValidNick("ålice|away"));
    for (const bad of ["", " a", "a ", "a\nb"]) assert.ok(!isValidNick(bad), JSON.stringify(bad));
  });

  it("normalising is idempotent and every normalised id round-trips through an xmpp: URI", async () => {
    const adapter = (await factory({ config: BASE, log: silentLogger(), configDir: "." })) as XmppAdapter;
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), (s) => {
        const id = normalizeRoomId(s);
        if (id === null) return;
        assert.equal(normalizeRoomId(id), id);
        assert.equal(adapter.roomFromUri(new URL(`xmpp:${encodeURIComponent(id)}@${MUC}`)), id);
      }),
    );
  });
});

describe("XMPP URIs", () => {
  const adapter = async () =>
    (await factory({ config: BASE, log: silentLogger(), configDir: "." })) as XmppAdapter;

  it("maps room URIs on the configured MUC service to room ids", async () => {
    const a = await adapter();
    assert.equal(a.roomFromUri(new URL(`xmpp:lobby@${MUC}`)), "lobby");
    assert.equal(a.roomFromUri(new URL(`xmpp:lobby@${MUC}?join`)), "lobby");
    assert.equal(a.roomFromUri(new URL(`xmpp:Lobby@CONFERENCE.example.org`)), "lobby");
    assert.equal(a.roomFromUri(new URL(`xmpp://bridge@example.org/lobby@${MUC}`)), "lobby");
    assert.equal(a.roomFromUri(new URL(`xmpp:lobby@conference.other.org`)), null);
    assert.equal(a.roomFromUri(new URL(`xmpp:lobby@${MUC}/alice`)), null);
    assert.equal(a.roomFromUri(new URL(`xmpp:lobby@${MUC}?message`)), null);
    assert.equal(a.roomFromUri(new URL(`irc://lobby@${MUC}`)), null);
    assert.equal(a.roomFromUri(new URL(`xmpp:${MUC}`)), null);
  });

  it("maps occupant URIs to nicks", async () => {
    const a = await adapter();
    assert.equal(a.userFromUri(new URL(`xmpp:lobby@${MUC}/alice`)), "alice");
    assert.equal(a.userFromUri(new URL(`xmpp:lobby@${MUC}/Alice%20Smith`)), "Alice Smith");
    assert.equal(a.userFromUri(new URL(`xmpp:lobby@${MUC}`)), null);
    assert.equal(a.userFromUri(new URL(`xmpp:lobby@elsewhere.org/alice`)), null);
    assert.equal(a.userFromUri(new URL(`xmpp:lobby@${MUC}/%20padded`)), null);
  });
});

describe("MUC stanzas", () => {
  const from = (nick?: string) => `lobby@${MUC}${nick === undefined ? "" : `/${nick}`}`;

  it("parses occupant presences with their status codes", () => {
    const nickChange = xml(
      "presence",
      { from: from("bob"), type: "unavailable" },
      xml(
        "x",
        { xmlns: "http://jabber.org/protocol/muc#user" },
        xml("item", { nick: "robert", role: "participant" }),
        xml("status", { code: "303" }),
      ),
    );
    assert.deepEqual(parseMucStanza(nickChange, MUC), {
      kind: "presence",
      roomLocal: "lobby",
      nick: "bob",
      available: false,
      codes: new Set(["303"]),
      newNick: "robert",
    });
    const kick = xml(
      "presence",
      { from: from("eve"), type: "unavailable" },
      xml(
        "x",
        { xmlns: "http://jabber.org/protocol/muc#user" },
        xml("item", { role: "none" }, xml("reason", {}, "spam")),
        xml("status", { code: "307" }),
      ),
    );
    const parsed = parseMucStanza(kick, MUC);
    assert.ok(parsed?.kind === "presence" && parsed.codes.has("307") && parsed.reason === "spam");
    const error = xml(
      "presence",
      { from: from("MatrixBridge"), type: "error" },
      xml("error", { type: "cancel" }, xml("conflict", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" })),
    );
    assert.deepEqual(parseMucStanza(error, MUC), {
      kind: "presence-error",
      roomLocal: "lobby",
      nick: "MatrixBridge",
      condition: "conflict",
    });
    assert.equal(parseMucStanza(xml("presence", { from: "alice@example.org/phone" }), MUC), null);
  });

  it("parses groupchat messages: delay, origin-id, the room's stanza-id only, corrections", () => {
    const el = xml(
      "message",
      { from: from("alice"), type: "groupchat", id: "m1" },
      xml("body", {}, "hi"),
      xml("delay", { xmlns: "urn:xmpp:delay", stamp: "2024-01-02T03:04:05Z", from: from() }),
      xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: "o1" }),
      xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id: "forged", by: "alice@example.org" }),
      xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id: "s1", by: from() }),
      xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "m0" }),
    );
    const m = parseMucStanza(el, MUC) as GroupMessage;
    assert.deepEqual(m, {
      kind: "message",
      roomLocal: "lobby",
      nick: "alice",
      body: "hi",
      id: "m1",
      originId: "o1",
      stanzaId: "s1",
      delayedTs: Date.UTC(2024, 0, 2, 3, 4, 5),
      replaces: "m0",
    });
    assert.equal(messageRemoteId(m), "o1");
    assert.equal(messageRemoteId({ ...m, originId: undefined }), "m1");
    assert.equal(
      messageRemoteId({ kind: "message", roomLocal: "lobby", nick: "a", body: "x", stanzaId: "s1" }),
      "s1",
    );
    // A subject change has a subject and no body; a chat state has neither.
    assert.deepEqual(
      parseMucStanza(
        xml("message", { from: from("alice"), type: "groupchat" }, xml("subject", {}, "Hi all")),
        MUC,
      ),
      { kind: "subject", roomLocal: "lobby", nick: "alice", subject: "Hi all" },
    );
    assert.equal(
      parseMucStanza(
        xml(
          "message",
          { from: from("alice"), type: "groupchat" },
          xml("active", { xmlns: "http://jabber.org/protocol/chatstates" }),
        ),
        MUC,
      ),
      null,
    );
    assert.equal(
      parseMucStanza(xml("message", { from: from("alice"), type: "chat" }, xml("body", {}, "dm")), MUC),
      null,
    );
  });

  it("builds joins without history and messages whose origin-id is their id", () => {
    const join = joinPresence(`lobby@${MUC}`, "MatrixBridge");
    assert.equal(join.attrs.to, `lobby@${MUC}/MatrixBridge`);
    assert.equal(
      join.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs.maxstanzas,
      "0",
    );
    const msg = groupMessage(`lobby@${MUC}`, "id-1", "<A> hi", "id-0");
    assert.equal(msg.attrs.type, "groupchat");
    assert.equal(msg.getChildText("body"), "<A> hi");
    assert.equal(msg.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, "id-1");
    assert.equal(msg.getChild("replace", "urn:xmpp:message-correct:0")?.attrs.id, "id-0");
    const disco = xml(
      "iq",
      { type: "result" },
      xml(
        "query",
        { xmlns: "http://jabber.org/protocol/disco#info" },
        xml("identity", { category: "conference", type: "text", name: "The Lobby" }),
      ),
    );
    assert.equal(roomNameFromDisco(disco, "lobby"), "The Lobby");
    assert.equal(roomNameFromDisco(xml("iq", { type: "result" }), "lobby"), "lobby");
  });
});

describe("relay format", () => {
  const msg = (msgtype: string, body: string, mediaUrl?: string) => ({
    msgtype,
    body,
    ...(mediaUrl ? { mediaUrl } : {}),
  });

  it("prefixes the sender's name; emotes use /me", () => {
    assert.equal(formatMessage(msg("m.text", "hello"), "Alice"), "<Alice> hello");
    assert.equal(formatMessage(msg("m.notice", "note"), "Alice"), "<Alice> note");
    assert.equal(formatMessage(msg("m.emote", "waves"), "Alice"), "/me Alice waves");
    assert.equal(formatMessage(msg("m.text", "two\nlines\u0001"), "Al\nice"), "<Al ice> two\nlines");
    assert.equal([...safeName("x".repeat(100))].length, 64);
  });

  it("turns media into a link", () => {
    assert.equal(
      formatMessage(
        msg("m.image", "cat.png", "mxc://example.org/abc"),
        "Alice",
        (mxc, name) => `https://bridge.example.org/${mxc.slice(6)}/${name}`,
      ),
      "<Alice> sent an image: cat.png https://bridge.example.org/example.org/abc/cat.png",
    );
    assert.equal(
      formatMessage(msg("m.file", "a.pdf", "mxc://example.org/f"), "Alice"),
      "<Alice> sent a file: a.pdf mxc://example.org/f",
    );
  });

  it("an edit reads like the original as a correction, else with a * marker", () => {
    assert.equal(formatEdit(msg("m.text", "fixed"), "Alice", true), "<Alice> fixed");
    assert.equal(formatEdit(msg("m.text", "fixed"), "Alice", false), "<Alice> * fixed");
    assert.equal(formatEdit(msg("m.emote", "waves"), "Alice", false), "/me Alice * waves");
  });
});
