/**
 * The IRC adapter against a real ngircd: a raw-socket IRC client plays the remote user, and a
 * RecordingContext stands in for the bridge core.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { silentLogger, type MatrixMessage, type MatrixEvent } from "matrix-bridgekit";
import factory, { type IrcAdapter, type IrcConfig } from "../src/adapter.js";
import { RecordingContext, type RecordedCall } from "../../../test/support/recording-context.js";
import { Ngircd } from "./ngircd.js";
import { RawIrcClient, type IrcLine } from "./raw-client.js";

const BOT = "RelayBot";

function matrixMessage(
  body: string,
  opts: { msgtype?: string; name?: string; mediaUrl?: string } = {},
): MatrixMessage {
  const raw: MatrixEvent = {
    event_id: `$${Math.random()}`,
    type: "m.room.message",
    room_id: "!r:example.org",
    sender: "@bob:example.org",
    origin_server_ts: Date.now(),
    content: { msgtype: opts.msgtype ?? "m.text", body },
  };
  const msg: MatrixMessage = {
    eventId: raw.event_id,
    sender: { userId: "@bob:example.org", displayName: opts.name ?? "Bob" },
    ts: raw.origin_server_ts,
    msgtype: opts.msgtype ?? "m.text",
    body,
    raw,
  };
  if (opts.mediaUrl !== undefined) msg.mediaUrl = opts.mediaUrl;
  return msg;
}

async function makeAdapter(config: Record<string, unknown>): Promise<IrcAdapter> {
  return (await factory({
    config: config as unknown as IrcConfig,
    log: silentLogger(),
    configDir: ".",
  })) as IrcAdapter;
}

const isCall = (method: string, room?: string, from?: string) => (c: RecordedCall) =>
  c.method === method && (room === undefined || c.room === room) && (from === undefined || c.from === from);

const privmsgTo =
  (channel: string, from = BOT) =>
  (l: IrcLine) =>
    l.command === "PRIVMSG" && l.nick === from && l.params[0]?.toLowerCase() === channel;

describe("IRC adapter against a real ngircd", () => {
  let server: Ngircd;
  let ctx: RecordingContext;
  let adapter: IrcAdapter;
  let alice: RawIrcClient;
  const clients: RawIrcClient[] = [];

  before(async () => {
    server = await Ngircd.start();
    // Alice is in #Fixed first (so she is its operator) before the bridge starts.
    alice = await RawIrcClient.connect(server.port, "Alice");
    clients.push(alice);
    await alice.join("#Fixed");
    ctx = new RecordingContext({ ghosts: "irc_{id}", portals: "irc_{id}" });
    adapter = await makeAdapter({
      server: "127.0.0.1",
      port: server.port,
      nick: BOT,
      channels: ["#Fixed"],
      announceMembership: true,
      floodLines: 50,
      floodIntervalMs: 1000,
      reconnectDelayMs: 100,
      reconnectMaxDelayMs: 500,
      timeoutMs: 5000,
    });
    await adapter.start(ctx);
  });

  after(async () => {
    await adapter?.stop();
    for (const c of clients) c.destroy();
    await server?.stop();
  });

  it("connects, joins the fixed channel, makes its portal and joins its members' ghosts", async () => {
    await alice.waitFor((l) => l.command === "JOIN" && l.nick === BOT && l.params[0] === "#Fixed");
    const ensure = await ctx.waitFor(isCall("ensurePortal"));
    assert.equal(ensure.args.length, 1);
    const spec = ensure.args[0] as { name: string; members: string[] };
    assert.equal(spec.name, "#Fixed");
    assert.deepEqual(spec.members, ["alice"]);
    assert.ok(ctx.calls.some(isCall("join", "fixed", "alice")));
    // Alice's display name keeps her spelling; her id is lowercased.
    const profile = await ctx.waitFor(isCall("setProfile", undefined, "alice"));
    assert.deepEqual(profile.args[0], { displayName: "Alice" });
    // The bot's own JOIN is not a ghost join.
    assert.ok(!ctx.calls.some((c) => c.method === "join" && c.from === "relaybot"));
  });

  it("relays a PRIVMSG as ctx.send with room, nick, text and timestamp", async () => {
    const before = Date.now();
    alice.send("PRIVMSG #fixed :hello from \x02IRC\x02");
    const call = await ctx.waitFor((c) => c.method === "send" && c.args[0] === "hello from IRC");
    assert.equal(call.room, "fixed");
    assert.equal(call.from, "alice");
    const opts = call.args[1] as { ts: number };
    assert.ok(opts.ts >= before - 1000 && opts.ts <= Date.now() + 1000, `ts ${opts.ts}`);
  });

  it("maps CTCP ACTION to m.emote and NOTICE to m.notice", async () => {
    alice.send("PRIVMSG #fixed :\x01ACTION waves\x01");
    alice.send("NOTICE #fixed :build is green");
    const emote = await ctx.waitFor(
      (c) => c.method === "send" && JSON.stringify(c.args[0]).includes("waves"),
    );
    assert.deepEqual(emote.args[0], { msgtype: "m.emote", body: "waves" });
    const notice = await ctx.waitFor(
      (c) => c.method === "send" && JSON.stringify(c.args[0]).includes("green"),
    );
    assert.deepEqual(notice.args[0], { msgtype: "m.notice", body: "build is green" });
    assert.equal(notice.from, "alice");
  });

  it("delivers Matrix messages as <name> text, emotes as ACTION and notices as NOTICE", async () => {
    const portal = ctx.portal("fixed");
    await adapter.onMessage(matrixMessage("hi IRC"), portal);
    await adapter.onMessage(matrixMessage("waves back", { msgtype: "m.emote" }), portal);
    await adapter.onMessage(matrixMessage("deploy done", { msgtype: "m.notice" }), portal);
    await adapter.onMessage(
      matrixMessage("cat.png", { msgtype: "m.image", mediaUrl: "mxc://example.org/abc" }),
      portal,
    );
    const text = await alice.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "<Bob> hi IRC");
    assert.ok(text);
    await alice.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "\x01ACTION Bob waves back\x01");
    await alice.waitFor(
      (l) => l.command === "NOTICE" && l.nick === BOT && l.params[1] === "<Bob> deploy done",
    );
    // The file goes as a link the bridge serves (ctx.mediaLink), named after the file.
    const link =
      /^<Bob> cat\.png https:\/\/bridge\.example\.org\/_bridgekit\/media\/v1\/example\.org\/abc\/\d+\/[\w-]{22}\/cat\.png$/;
    await alice.waitFor((l) => privmsgTo("#fixed")(l) && link.test(l.params[1] ?? ""));
    assert.deepEqual(ctx.calls.find((c) => c.method === "mediaLink")?.args, [
      "mxc://example.org/abc",
      { fileName: "cat.png" },
    ]);
  });

  it("sends edits as a correction line", async () => {
    await adapter.onEdit(
      {
        eventId: "$edit",
        sender: { userId: "@bob:example.org", displayName: "Bob" },
        ts: Date.now(),
        target: { eventId: "$orig" },
        msgtype: "m.text",
        body: "fixed typo",
        raw: matrixMessage("x").raw,
      },
      ctx.portal("fixed"),
    );
    await alice.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "<Bob> * fixed typo");
  });

  it("splits long and multi-line messages into IRC lines that arrive complete", async () => {
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    const unbroken = "é🎉".repeat(200) + "x";
    const multi = "first line\nsecond line\r\n\r\nthird line";
    const portal = ctx.portal("fixed");
    const seen = alice.lines.length;
    await adapter.onMessage(matrixMessage(words, { name: "Long" }), portal);
    await adapter.onMessage(matrixMessage(unbroken, { name: "Wide" }), portal);
    await adapter.onMessage(matrixMessage(multi, { name: "Multi" }), portal);
    await alice.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "<Multi> third line");
    const mine = alice.lines.slice(seen).filter(privmsgTo("#fixed"));
    for (const line of mine) {
      assert.ok(line.raw.length + 2 <= 512, `line of ${line.raw.length + 2} bytes`);
      assert.ok(!line.raw.toString("utf8").includes("\uFFFD"), "a line was cut inside a UTF-8 character");
    }
    const bodies = (prefix: string) =>
      mine.filter((l) => l.params[1]?.startsWith(prefix)).map((l) => l.params[1]!.slice(prefix.length));
    const longLines = bodies("<Long> ");
    assert.ok(longLines.length >= 4, `${longLines.length} lines`);
    assert.equal(longLines.join(" "), words);
    const wideLines = bodies("<Wide> ");
    assert.ok(wideLines.length >= 3, `${wideLines.length} lines`);
    assert.equal(wideLines.join(""), unbroken);
    assert.deepEqual(bodies("<Multi> "), ["first line", "second line", "third line"]);
  });

  it("does not relay the bridge's own messages back into Matrix", async () => {
    await adapter.onMessage(matrixMessage("echo check"), ctx.portal("fixed"));
    await alice.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "<Bob> echo check");
    alice.send("PRIVMSG #fixed :marker after echo check");
    await ctx.waitFor((c) => c.method === "send" && c.args[0] === "marker after echo check");
    assert.ok(!ctx.calls.some((c) => c.from === "relaybot"), "a call came from the bot's own nick");
  });

  it("maps JOIN, NICK, TOPIC, PART, KICK and QUIT to the context calls", async () => {
    const carol = await RawIrcClient.connect(server.port, "Carol");
    clients.push(carol);
    await carol.join("#fixed");
    await ctx.waitFor(isCall("join", "fixed", "carol"));

    carol.send("NICK Caroline");
    await ctx.waitFor(isCall("leave", "fixed", "carol"));
    await ctx.waitFor(isCall("join", "fixed", "caroline"));
    const profile = await ctx.waitFor(isCall("setProfile", undefined, "caroline"));
    assert.deepEqual(profile.args[0], { displayName: "Caroline" });

    alice.send("TOPIC #fixed :bridged with Matrix");
    const topic = await ctx.waitFor(isCall("setRoomInfo", "fixed", "alice"));
    assert.deepEqual(topic.args[0], { topic: "bridged with Matrix" });

    carol.send("PART #fixed :see you");
    const part = await ctx.waitFor(isCall("leave", "fixed", "caroline"));
    assert.equal(part.args[0], "see you");

    const dave = await RawIrcClient.connect(server.port, "Dave");
    clients.push(dave);
    await dave.join("#fixed");
    await ctx.waitFor(isCall("join", "fixed", "dave"));
    alice.send("KICK #fixed Dave :behave");
    const kick = await ctx.waitFor(isCall("leave", "fixed", "dave"));
    assert.equal(kick.args[0], "kicked by Alice: behave");

    const erin = await RawIrcClient.connect(server.port, "Erin");
    clients.push(erin);
    await erin.join("#fixed");
    await ctx.waitFor(isCall("join", "fixed", "erin"));
    await erin.quit("gone fishing");
    const quit = await ctx.waitFor(isCall("leave", "fixed", "erin"));
    assert.match(String(quit.args[0]), /gone fishing/);
  });

  it("relays a Matrix topic change as TOPIC and does not echo it back", async () => {
    await adapter.onRoomChange(
      {
        eventId: "$t",
        sender: { userId: "@bob:example.org", displayName: "Bob" },
        kind: "topic",
        value: "set from Matrix",
        raw: matrixMessage("x").raw,
      },
      ctx.portal("fixed"),
    );
    await alice.waitFor((l) => l.command === "TOPIC" && l.nick === BOT && l.params[1] === "set from Matrix");
    alice.send("PRIVMSG #fixed :marker after topic");
    await ctx.waitFor((c) => c.method === "send" && c.args[0] === "marker after topic");
    assert.ok(!ctx.calls.some((c) => c.method === "setRoomInfo" && c.from === "relaybot"));
  });

  it("announces Matrix joins with a NOTICE when announceMembership is set", async () => {
    await adapter.onMembership(
      {
        eventId: "$m",
        sender: { userId: "@zoe:example.org", displayName: "Zoe" },
        userId: "@zoe:example.org",
        membership: "join",
        displayName: "Zoe",
        raw: matrixMessage("x").raw,
      },
      ctx.portal("fixed"),
    );
    await alice.waitFor(
      (l) => l.command === "NOTICE" && l.nick === BOT && l.params[1] === "Zoe joined the Matrix room",
    );
  });

  it("queryRoom joins the channel and answers its name, topic and members", async () => {
    const frank = await RawIrcClient.connect(server.port, "Frank");
    clients.push(frank);
    await frank.join("#Query");
    frank.send("TOPIC #Query :all about queries");
    await frank.waitFor((l) => l.command === "TOPIC");
    const spec = await adapter.queryRoom("query");
    assert.ok(spec);
    assert.equal(spec.name, "#Query");
    assert.equal(spec.topic, "all about queries");
    assert.deepEqual(spec.members, ["frank"]);
    await frank.waitFor((l) => l.command === "JOIN" && l.nick === BOT);
    frank.send("PRIVMSG #query :in the queried channel");
    const call = await ctx.waitFor((c) => c.method === "send" && c.args[0] === "in the queried channel");
    assert.equal(call.room, "query");
    assert.equal(call.from, "frank");
    // Ids that are not normalised channel names are no rooms.
    assert.equal(await adapter.queryRoom("Query"), null);
    assert.equal(await adapter.queryRoom("has space"), null);
  });

  it("queryUser answers online nicks with their spelling and null for offline ones", async () => {
    assert.deepEqual(await adapter.queryUser("alice"), { displayName: "Alice" });
    assert.equal(await adapter.queryUser("nobodyhere"), null);
    assert.equal(await adapter.queryUser("not a nick"), null);
  });

  it("reconnects after the server restarts, rejoins and relays again", async () => {
    const sendsBefore = ctx.calls.filter((c) => c.method === "send").length;
    await server.restart();
    for (const c of clients) c.destroy();
    const alice2 = await RawIrcClient.connect(server.port, "Alice");
    clients.push(alice2);
    // The bot rejoins #Fixed on its own; Alice meets it there.
    await alice2.join("#fixed");
    const deadline = Date.now() + 15_000;
    while (!alice2.lines.some((l) => l.command === "JOIN" && l.nick === BOT)) {
      const names = alice2.lines.find(
        (l) => l.command === "353" && /\bRelayBot\b/i.test(l.params.at(-1) ?? ""),
      );
      if (names) break;
      assert.ok(Date.now() < deadline, "the bot did not rejoin #fixed after the restart");
      await new Promise((r) => setTimeout(r, 100));
    }
    alice2.send("PRIVMSG #fixed :after the restart");
    const call = await ctx.waitFor((c) => c.method === "send" && c.args[0] === "after the restart");
    assert.equal(call.from, "alice");
    assert.ok(ctx.calls.filter((c) => c.method === "send").length > sendsBefore);
    await adapter.onMessage(matrixMessage("back again"), ctx.portal("fixed"));
    await alice2.waitFor((l) => privmsgTo("#fixed")(l) && l.params[1] === "<Bob> back again");
  });
});

describe("IRC adapter start and stop", () => {
  it("a failed start-up (portal creation fails) disconnects from IRC before rejecting", async () => {
    const server = await Ngircd.start();
    const watcher = await RawIrcClient.connect(server.port, "Watcher");
    try {
      await watcher.join("#boom");
      const ctx = new RecordingContext();
      ctx.portals.ensure = () => Promise.reject(new Error("homeserver unavailable"));
      const adapter = await makeAdapter({
        server: "127.0.0.1",
        port: server.port,
        nick: "Boom",
        channels: ["#boom"],
      });
      await assert.rejects(adapter.start(ctx), /homeserver unavailable/);
      await watcher.waitFor((l) => l.command === "QUIT" && l.nick === "Boom");
      await adapter.stop();
    } finally {
      watcher.destroy();
      await server.stop();
    }
  });

  it("start rejects with a clear error when the server is unreachable, and stop does not throw", async () => {
    const server = await Ngircd.start();
    const port = server.port;
    await server.stop();
    const adapter = await makeAdapter({ server: "127.0.0.1", port, nick: "Bot", timeoutMs: 3000 });
    await assert.rejects(adapter.start(new RecordingContext()), (err: Error) => {
      assert.match(err.message, new RegExp(`cannot connect to IRC server 127\\.0\\.0\\.1:${port}`));
      return true;
    });
    await adapter.stop();
    await adapter.stop();
  });
});
