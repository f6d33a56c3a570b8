/**
 * IRC logins: the flow and its pure helpers, then sessions against a real ngircd. Each login
 * is its own IRC connection with the user's nick; a raw-socket client plays the IRC user, a
 * RecordingContext (with a login) stands in for the bridge core's SessionContext.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  silentLogger,
  type JsonValue,
  type Login,
  type LoginStep,
  type MatrixEvent,
  type MatrixMessage,
  type Portal,
  type SessionContext,
} from "matrix-bridgekit";
import factory, { type IrcAdapter } from "../src/adapter.js";
import { resolveIrcConfig } from "../src/config.js";
import { fillUserTemplate, idToQuery, queryToId } from "../src/irc-ids.js";
import { IrcLoginProcess, parseLoginData } from "../src/login-flow.js";
import { ownEdit, ownMessage } from "../src/relay-format.js";
import type { IrcSession } from "../src/session.js";
import { RecordingContext, testCall, type RecordedCall } from "../../../test/support/recording-context.js";
import { Ngircd } from "./ngircd.js";
import { RawIrcClient, type IrcLine } from "./raw-client.js";

const BOT = "RelayBot";

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function message(body: string, sender: string, msgtype = "m.text"): MatrixMessage {
  const raw: MatrixEvent = {
    event_id: `$${Math.random()}`,
    type: "m.room.message",
    room_id: "!r:example.org",
    sender,
    origin_server_ts: Date.now(),
    content: { msgtype, body },
  };
  return {
    eventId: raw.event_id,
    sender: { userId: sender, displayName: "Alice" },
    ts: 0,
    msgtype,
    body,
    raw,
  };
}

describe("IRC login flow and helpers", () => {
  it("asks for a nick, and a password for the sasl and nickserv flows; completes with the nick as the login id", async () => {
    const plain = new IrcLoginProcess("nick", "irc.example.net");
    const first = await plain.start();
    assert.equal(first.type, "user_input");
    assert.deepEqual(
      first.fields.map((f) => [f.id, f.type]),
      [["nick", "username"]],
    );
    const done = await plain.submit({ type: "user_input", values: { nick: "Alice_M" } });
    assert.equal(done.type, "complete");
    const login = done.login;
    assert.deepEqual(login, {
      id: "alice_m",
      name: "Alice_M on irc.example.net",
      data: { nick: "Alice_M", auth: "none" },
    });

    const sasl = new IrcLoginProcess("sasl", "irc.example.net");
    const step = (await sasl.start()) as Extract<LoginStep, { type: "user_input" }>;
    assert.deepEqual(
      step.fields.map((f) => [f.id, f.type]),
      [
        ["nick", "username"],
        ["password", "password"],
      ],
    );
    const saslDone = (await sasl.submit({
      type: "user_input",
      values: { nick: "alice", password: "pw" },
    })) as Extract<LoginStep, { type: "complete" }>;
    assert.deepEqual(saslDone.login.data, { nick: "alice", auth: "sasl", password: "pw" });
    await assert.rejects(
      new IrcLoginProcess("nick", "x").submit({ type: "user_input", values: { nick: "1abc" } }),
      /"1abc" is not a valid IRC nick/,
    );
  });

  it("reads only login data it wrote", () => {
    assert.deepEqual(parseLoginData({ nick: "bob", auth: "nickserv", password: "p" }, "bob"), {
      nick: "bob",
      auth: "nickserv",
      password: "p",
    });
    assert.throws(
      () => parseLoginData({ nick: "bob", auth: "sasl" }, "bob"),
      /IRC login bob is not readable/,
    );
    assert.throws(() => parseLoginData("junk", "x"), /not readable/);
  });

  it("names queries apart from channels, fills ident and real name templates, formats own lines without a name", () => {
    assert.equal(queryToId("Bob"), "pm,bob");
    assert.equal(idToQuery("pm,bob"), "bob");
    assert.equal(idToQuery("lobby"), null);
    const who = { nick: "alice_m", userId: "@alice.smith:example.org" };
    assert.equal(fillUserTemplate("{localpart}", who, "ident"), "alicesmith");
    assert.equal(
      fillUserTemplate("{userId} via Matrix", who, "realname"),
      "@alice.smith:example.org via Matrix",
    );
    assert.deepEqual(ownMessage({ msgtype: "m.emote", body: "waves" }), {
      kind: "action",
      prefix: "",
      text: "waves",
    });
    assert.deepEqual(ownEdit({ body: "fixed" }), { kind: "privmsg", prefix: "* ", text: "fixed" });
  });

  it("validates the logins' config keys, naming them", () => {
    const ok = resolveIrcConfig({ server: "s", nick: "n" });
    assert.equal(ok.relay, true);
    assert.equal(ok.userIdent, "{localpart}");
    assert.throws(
      () => resolveIrcConfig({ server: "s", nick: "n", userRealname: "{displayname}" }),
      /userRealname.*not \{displayname\}/,
    );
    assert.throws(() => resolveIrcConfig({ server: "s", nick: "n", relay: "yes" }), /relay/);
  });

  it("with relay: false the bot tells users without a login to log in instead of relaying them", async () => {
    const quiet = (await factory({
      config: { server: "127.0.0.1", nick: "bot", relay: false },
      log: silentLogger(),
      configDir: ".",
    })) as IrcAdapter;
    await assert.rejects(
      quiet.onMessage(message("hi", "@eve:example.org"), { remoteId: "lobby", roomId: "!r:x" }),
      {
        name: "PermanentError",
        message: /does not relay for users without a login: send `login`/,
      },
    );
  });
});

/** A RecordingContext with a login: what connect() gets as its SessionContext. */
class SessionRecording extends RecordingContext implements SessionContext {
  readonly told: string[] = [];
  readonly states: string[] = [];
  reconnects: string[] = [];
  constructor(
    public login: Login,
    shared?: RecordingContext,
  ) {
    super({ ghosts: "irc_{id}", portals: "irc_{id}" });
    if (shared) Object.assign(this, { kv: shared.kv });
  }
  setState(state: string): void {
    this.states.push(state);
  }
  updateLogin(changes: { name?: string; data?: JsonValue }): Promise<void> {
    this.login = { ...this.login, ...changes };
    return Promise.resolve();
  }
  reconnect(why?: string): void {
    this.reconnects.push(why ?? "");
  }
  tell(text: string): Promise<void> {
    this.told.push(text);
    return Promise.resolve();
  }
}

const loginOf = (nick: string, userId: string, extra: Record<string, string> = {}): Login => ({
  id: nick.toLowerCase(),
  userId,
  name: `${nick} on 127.0.0.1`,
  data: { nick, auth: "none", ...extra },
});

describe("IRC logins against a real ngircd", () => {
  let server: Ngircd;
  let ctx: RecordingContext;
  let adapter: IrcAdapter;
  let carol: RawIrcClient;
  const clients: RawIrcClient[] = [];
  let alice: IrcSession;
  let aliceCtx: SessionRecording;
  let lobby: Portal;
  const ALICE = "@alice:example.org";

  const from =
    (nick: string, command = "PRIVMSG") =>
    (l: IrcLine) =>
      l.command === command && l.nick === nick;

  before(async () => {
    server = await Ngircd.start();
    carol = await RawIrcClient.connect(server.port, "Carol");
    clients.push(carol);
    await carol.join("#Lobby"); // Carol is the channel's operator
    ctx = new RecordingContext({ ghosts: "irc_{id}", portals: "irc_{id}" });
    adapter = (await factory({
      config: {
        server: "127.0.0.1",
        port: server.port,
        nick: BOT,
        channels: ["#Lobby"],
        floodLines: 50,
        floodIntervalMs: 1000,
        timeoutMs: 5000,
        userIdent: "{localpart}",
      },
      log: silentLogger(),
      configDir: ".",
    })) as IrcAdapter;
    await adapter.start(ctx);
    lobby = await ctx.portals.ensure("lobby");
    aliceCtx = new SessionRecording(loginOf("alice_m", ALICE), ctx);
    alice = (await adapter.logins.connect(aliceCtx.login, aliceCtx, testCall())) as IrcSession;
  });

  after(async () => {
    await alice?.disconnect();
    await adapter?.stop();
    for (const c of clients) c.destroy();
    await server?.stop();
  });

  it("a login's message goes out from its own nick (joining the channel first), never echoed back as a ghost", async () => {
    await alice.onMessage(message("hello from Matrix", ALICE), lobby);
    const line = await carol.waitFor(from("alice_m"));
    assert.deepEqual(line.params, ["#Lobby", "hello from Matrix"]);
    const join = carol.lines.find((l) => l.command === "JOIN" && l.nick === "alice_m");
    assert.ok(join, "alice_m joined #Lobby");
    assert.equal(
      join.raw.toString("utf8").includes("~alice@") || join.raw.toString("utf8").includes("alice@"),
      true,
    );
    await alice.onMessage(message("waves", ALICE, "m.emote"), lobby);
    const action = await carol.waitFor((l) => from("alice_m")(l) && l.params[1]!.startsWith("\x01ACTION"));
    assert.equal(action.params[1], "\x01ACTION waves\x01");
    // The bot saw alice_m join and speak: no ghost for her, nothing sent into Matrix.
    carol.send("PRIVMSG #Lobby :marker");
    await ctx.waitFor((c: RecordedCall) => c.method === "send" && c.from === "carol");
    assert.equal(
      ctx.calls.some((c) => c.from === "alice_m"),
      false,
      `no call from alice_m's ghost: ${JSON.stringify(ctx.calls.filter((c) => c.from === "alice_m"))}`,
    );
  });

  it("a login's file goes out as a link the bridge serves, from its nick", async () => {
    const file = { ...message("cat.png", ALICE, "m.image"), mediaUrl: "mxc://example.org/cat" };
    await alice.onMessage(file, lobby);
    const line = await carol.waitFor((l) => from("alice_m")(l) && l.params[1]!.startsWith("cat.png "));
    assert.match(line.params[1]!, /^cat\.png https:\/\/bridge\.example\.org\/_bridgekit\/media\/\S+$/);
  });

  it("an IRC user's private message to the login opens its DM portal and arrives from their ghost", async () => {
    carol.send("PRIVMSG alice_m :psst, Alice");
    const sent = await aliceCtx.waitFor((c) => c.method === "send" && c.room === "pm,carol");
    assert.equal(sent.from, "carol");
    assert.equal(sent.args[0], "psst, Alice");
    const ensured = aliceCtx.calls.find((c) => c.method === "ensurePortal" && c.args[0] !== undefined);
    assert.deepEqual(ensured?.args[0], { direct: true, name: "Carol", members: ["carol"] });
    // The answer, in the DM portal, is a private message from alice_m.
    await alice.onMessage(message("hi Carol", ALICE), {
      remoteId: "pm,carol",
      roomId: "!dm:x",
      login: "alice_m",
    });
    const answer = await carol.waitFor((l) => from("alice_m")(l) && l.params[0] === "Carol");
    assert.equal(answer.params[1], "hi Carol");
  });

  it("startDM checks the nick is on IRC and names the query", async () => {
    assert.equal(await alice.startDM("carol"), "pm,carol");
    await assert.rejects(alice.startDM("nobody_here"), /nobody_here is not on IRC now/);
  });

  it("a new login joins the channels of the portals its user joined on Matrix before logging in", async () => {
    const DAVE = "@dave:example.org";
    const member = {
      eventId: "$j",
      sender: { userId: DAVE, displayName: "Dave" },
      userId: DAVE,
      raw: {} as MatrixEvent,
    };
    await adapter.onMembership({ ...member, membership: "join" }, lobby);
    const daveCtx = new SessionRecording(loginOf("dave_m", DAVE), ctx);
    const dave = (await adapter.logins.connect(daveCtx.login, daveCtx, testCall())) as IrcSession;
    try {
      const join = await carol.waitFor((l) => l.command === "JOIN" && l.nick === "dave_m");
      assert.equal(join.params[0]?.toLowerCase(), "#lobby");
    } finally {
      await dave.disconnect();
    }
  });

  it("a taken nick gets a suffix and the user is told", async () => {
    const holder = await RawIrcClient.connect(server.port, "bob_m");
    clients.push(holder);
    const bobCtx = new SessionRecording(loginOf("bob_m", "@bob:example.org"), ctx);
    const bob = (await adapter.logins.connect(bobCtx.login, bobCtx, testCall())) as IrcSession;
    try {
      assert.equal(bob.nick, "bob_m_");
      assert.match(bobCtx.told[0] ?? "", /The nick bob_m is in use on IRC: you are bob_m_ for now/);
      // `nick` to a free nick works and is kept for the next connects; to a taken one, a clear refusal.
      await assert.rejects(bob.changeNick("Carol"), /the nick Carol is in use on IRC/);
      assert.equal(await bob.changeNick("bob_matrix"), "bob_matrix");
      assert.deepEqual(bobCtx.login.data, { nick: "bob_matrix", auth: "none" });
      assert.equal(bobCtx.login.name, "bob_matrix on 127.0.0.1");
    } finally {
      await bob.disconnect();
    }
  });

  it("a kick of the login's connection is shown in the portal and told to the user", async () => {
    await aliceCtx.portals.ensure("lobby"); // the shared portal, as the login's context sees it
    carol.send("KICK #Lobby alice_m :behave");
    const notice = await aliceCtx.waitFor((c) => c.method === "send" && c.room === "lobby");
    assert.equal(notice.from, "carol");
    assert.deepEqual(notice.args[0], {
      msgtype: "m.notice",
      body: `kicked alice_m (${ALICE} on IRC) from #Lobby: behave`,
    });
    await until("the user is told", () => aliceCtx.told.some((t) => t.includes("kicked you")));
    assert.match(aliceCtx.told.at(-1) ?? "", /Carol kicked you \(alice_m\) from #Lobby on IRC: behave/);
    // The bot does not turn the kick into a ghost's leave (alice_m has no ghost).
    assert.equal(
      ctx.calls.some((c) => c.method === "leave" && c.args.includes("alice_m")),
      false,
    );
  });

  it("commands: nick refuses a taken nick saying why, whois answers through the login's connection", async () => {
    const replies: string[] = [];
    const cmd = {
      user: { userId: ALICE, permission: "user" as const },
      roomId: "!mgmt:x",
      login: { login: aliceCtx.login, session: alice },
      reply: (text: string) => Promise.resolve(void replies.push(text)),
    };
    const run = (name: string, args: Record<string, string>) =>
      adapter.commands.find((c) => c.name === name)!.run(args, cmd, testCall());
    await assert.rejects(
      run("nick", { nick: "Carol" }),
      /the nick Carol is in use on IRC; you are still alice_m/,
    );
    await assert.rejects(run("nick", { nick: "9lives" }), /"9lives" is not a valid IRC nick/);
    await run("whois", { nick: "carol" });
    assert.equal(replies.at(-1), "Carol is on IRC (real name: Carol test user): @irc_carol:example.org");
    await run("whois", { nick: "ghost_of_nobody" });
    assert.equal(replies.at(-1), "ghost_of_nobody is not on IRC now.");
    await assert.rejects(
      run("msg", { nick: "nobody_here" }).then(() => undefined),
      /nobody_here is not on IRC now/,
    );
  });

  it("the user's Matrix leave parts the channel; their join joins it again", async () => {
    const leave = { eventId: "$l", sender: { userId: ALICE, displayName: "Alice" }, userId: ALICE };
    await alice.onMembership({ ...leave, membership: "join", raw: {} as MatrixEvent }, lobby);
    await carol.waitForCount((l) => l.command === "JOIN" && l.nick === "alice_m", 2);
    await alice.onMembership({ ...leave, membership: "leave", raw: {} as MatrixEvent }, lobby);
    const part = await carol.waitFor((l) => l.command === "PART" && l.nick === "alice_m");
    assert.equal(part.params[0], "#Lobby");
  });

  it("a lost connection is handed to the framework's reconnect (with backoff); the bot makes no ghost leave of it", async () => {
    carol.send("OPER oper oper-password");
    await carol.waitFor((l) => l.command === "381"); // RPL_YOUREOPER
    carol.send("KILL alice_m :testing reconnects");
    await until("the session asks to reconnect", () => aliceCtx.reconnects.length > 0);
    assert.match(aliceCtx.reconnects[0]!, /^lost the IRC connection: /);
    carol.send("PRIVMSG #Lobby :marker 2");
    await ctx.waitFor((c: RecordedCall) => c.method === "send" && (c.args[0] as string) === "marker 2");
    assert.equal(
      ctx.calls.some((c) => c.args.includes("alice_m") || c.from === "alice_m"),
      false,
    );
  });
});
