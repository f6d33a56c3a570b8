/**
 * The IRC example bridge end to end: a real ngircd, a real Synapse, and the whole bridge
 * (config file -> Bridge -> IRC adapter) in between. A raw-socket IRC client plays the IRC
 * user; a Matrix user registered on Synapse speaks the client-server API with plain fetch.
 *
 * The bridge is the real `bridgekit start --config <file>` in a child process
 * (test/e2e/support/bridge-process.ts), stopped with SIGTERM and started again for the restart
 * test. Needs root, the provisioned Synapse root (`bash scripts/synapse/provision.sh`) and
 * ngircd (installed if missing); fails, never skips, when any of them is unavailable.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MatrixEvent, Registration } from "matrix-bridgekit";
import { freePort, startSynapse, type SynapseInstance } from "../../../test/e2e/support/synapse.js";
import { Ngircd } from "./ngircd.js";
import { RawIrcClient, type IrcLine } from "./raw-client.js";
import {
  ALIAS,
  appserviceGet,
  BOT_NICK,
  BOT_USER,
  CHANNEL,
  DOMAIN,
  downloadWithoutToken,
  ghost,
  ircRegistration,
  MatrixUser,
  writeIrcBridgeFiles,
} from "./e2e-support.js";
import {
  startBridgeProcess,
  type BridgeProcess,
  type LogLine,
} from "../../../test/e2e/support/bridge-process.js";

/** How long to watch for duplicated lines or events after the exchange. */
const SETTLE_MS = 3000;

const fromBot = (command: string) => (l: IrcLine) =>
  l.command === command && l.nick === BOT_NICK && l.params[0]?.toLowerCase() === CHANNEL.toLowerCase();

describe("IRC bridge end to end: ngircd <-> bridge <-> Synapse", () => {
  let ngircd: Ngircd | undefined;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  /** The log lines of bridge processes that have exited (a restart starts a new one). */
  const earlierLogs: LogLine[] = [];
  const allLogs = (): LogLine[] => [...earlierLogs, ...(bridge?.logs() ?? [])];
  let registration: Registration;
  let appservicePort: number;
  let dir: string;
  let configPath: string;
  const irc: RawIrcClient[] = [];
  let carol: RawIrcClient;
  let dana: MatrixUser;
  /** The line that carried Dana's file to IRC. */
  let fileLine = "";
  let roomId: string;

  /** Runs `fn`; a failure carries the bridge's and Synapse's log tails. */
  const explain = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message +=
        `\n--- bridge (last output) ---\n${bridge?.stderr().slice(-3000) ?? ""}\n${bridge?.stdout().slice(-6000) ?? "(not started)"}` +
        `\n--- synapse ---\n${synapse?.logTail(30) ?? "(not started)"}`;
      throw e;
    }
  };

  /** Starts the bridge from its config file, as `bridgekit start` does. */
  const startBridge = async () => {
    bridge = await startBridgeProcess(configPath);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-irc-e2e-"));
    ngircd = await Ngircd.start();
    // Carol is in the channel, with a topic, before the bridge exists.
    carol = await RawIrcClient.connect(ngircd.port, "Carol");
    irc.push(carol);
    await carol.join(CHANNEL);
    carol.send(`TOPIC ${CHANNEL} :Welcome to the lobby`);
    await carol.waitFor((l) => l.command === "TOPIC" && l.nick === "Carol");

    appservicePort = await freePort();
    registration = ircRegistration("irc-e2e", appservicePort);
    synapse = await startSynapse({ registrations: [registration], serverName: DOMAIN });
    ({ configPath } = await writeIrcBridgeFiles(dir, {
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      appservicePort,
      registration,
      extraConfig: {
        media: { publicUrl: `http://127.0.0.1:${appservicePort}`, linkKey: "irc-e2e-media-link-key-0123" },
      },
      adapterConfig: {
        server: "127.0.0.1",
        port: ngircd.port,
        nick: BOT_NICK,
        floodLines: 50,
        floodIntervalMs: 1000,
        reconnectDelayMs: 100,
        reconnectMaxDelayMs: 1000,
        timeoutMs: 10_000,
      },
    }));
    await explain(startBridge);
    const listening = allLogs().find((l) => l.msg === "application service listening");
    assert.equal(listening?.port, appservicePort);

    const user = await synapse.registerUser("dana");
    dana = new MatrixUser(synapse.url, user.userId, user.accessToken);
    await dana.setDisplayName("Dana Matrix");
  });

  after(async () => {
    for (const client of irc) client.destroy();
    await bridge?.stop();
    await synapse?.stop();
    await ngircd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("joining #irc_lobby makes the bot join the IRC channel and creates the portal", () =>
    explain(async () => {
      roomId = await dana.join(ALIAS);
      assert.match(roomId, /^!/);
      // The alias query made the bot join #Lobby on IRC.
      await carol.waitFor((l) => l.command === "JOIN" && l.nick === BOT_NICK);
      // The portal: named after the channel, with its topic, the bot and Carol's ghost in it.
      assert.equal((await dana.state(roomId, "m.room.name"))?.name, CHANNEL);
      assert.equal((await dana.state(roomId, "m.room.topic"))?.topic, "Welcome to the lobby");
      const members = await dana.joinedMembers(roomId);
      for (const expected of [BOT_USER, ghost("carol"), dana.userId])
        assert.ok(members.includes(expected), `${expected} not joined; members: ${members.join(", ")}`);
      const profile = await dana.request("GET", `/_matrix/client/v3/profile/${ghost("carol")}`);
      assert.equal(profile.displayname, "Carol");
      // The alias resolves to the portal for everyone.
      const resolved = await dana.request<{ room_id: string }>(
        "GET",
        `/_matrix/client/v3/directory/room/${encodeURIComponent(ALIAS)}`,
      );
      assert.equal(resolved.room_id, roomId);
    }));

  it("a Matrix message reaches IRC as <displayname> text, an emote as ACTION", () =>
    explain(async () => {
      await dana.send(roomId, "hello from matrix");
      const line = await carol.waitFor(fromBot("PRIVMSG"));
      assert.equal(line.params[1], "<Dana Matrix> hello from matrix");
      await dana.send(roomId, "waves", "m.emote");
      const action = await carol.waitFor(
        (l) => fromBot("PRIVMSG")(l) && l.params[1]?.startsWith("\x01ACTION") === true,
      );
      assert.equal(action.params[1], "\x01ACTION Dana Matrix waves\x01");
    }));

  it("a Matrix file reaches IRC as a link the bridge serves, which opens without a token", () =>
    explain(async () => {
      const data = Buffer.from(`a file from Matrix ${"x".repeat(5000)}`);
      await dana.sendFile(roomId, data, "cat.txt", "text/plain");
      const line = await carol.waitFor(
        (l) => fromBot("PRIVMSG")(l) && l.params[1]?.includes("cat.txt") === true,
      );
      fileLine = line.params[1]!;
      const m =
        /^<Dana Matrix> cat\.txt (http:\/\/127\.0\.0\.1:\d+\/_bridgekit\/media\/v1\/\S+\/cat\.txt)$/.exec(
          fileLine,
        );
      assert.ok(m, fileLine);
      assert.deepEqual(await downloadWithoutToken(m[1]!), data);
    }));

  it("an IRC PRIVMSG appears in Matrix from the ghost, /me as m.emote", () =>
    explain(async () => {
      carol.send(`PRIVMSG ${CHANNEL} :hello from irc`);
      const text = await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.message" && e.content.body === "hello from irc",
        "relayed PRIVMSG",
      );
      assert.equal(text.sender, ghost("carol"));
      assert.equal(text.content.msgtype, "m.text");

      carol.send(`PRIVMSG ${CHANNEL} :\x01ACTION dances\x01`);
      const emote = await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.message" && e.content.body === "dances",
        "relayed ACTION",
      );
      assert.equal(emote.sender, ghost("carol"));
      assert.equal(emote.content.msgtype, "m.emote");
    }));

  it("an IRC user's JOIN and PART show as the ghost joining and leaving", () =>
    explain(async () => {
      const erin = await RawIrcClient.connect(ngircd!.port, "Erin");
      irc.push(erin);
      await erin.join(CHANNEL);
      const isErin = (membership: string) => (e: MatrixEvent) =>
        e.type === "m.room.member" && e.state_key === ghost("erin") && e.content.membership === membership;
      const joined = await dana.waitForEvent(roomId, isErin("join"), "ghost join of Erin");
      assert.equal(joined.sender, ghost("erin"));
      assert.ok((await dana.joinedMembers(roomId)).includes(ghost("erin")));
      const profile = await dana.request("GET", `/_matrix/client/v3/profile/${ghost("erin")}`);
      assert.equal(profile.displayname, "Erin");

      erin.send(`PART ${CHANNEL} :off to lunch`);
      const left = await dana.waitForEvent(roomId, isErin("leave"), "ghost leave of Erin");
      assert.equal(left.sender, ghost("erin"));
      assert.equal(left.content.reason, "off to lunch");
      assert.ok(!(await dana.joinedMembers(roomId)).includes(ghost("erin")));
      await erin.quit();
    }));

  it("a TOPIC change on IRC changes the Matrix room topic", () =>
    explain(async () => {
      carol.send(`TOPIC ${CHANNEL} :Topic set on IRC`);
      const event = await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.topic" && e.content.topic === "Topic set on IRC",
        "topic change",
      );
      // Set by Carol's ghost, or by the bot for her when the ghost lacks the power level.
      assert.ok([ghost("carol"), BOT_USER].includes(event.sender), `topic set by ${event.sender}`);
      assert.equal((await dana.state(roomId, "m.room.topic"))?.topic, "Topic set on IRC");
    }));

  it("the third-party URI queries answer the ghost and the portal alias", () =>
    explain(async () => {
      const server = `127.0.0.1:${ngircd!.port}`;
      const get = (path: string) => appserviceGet(appservicePort, registration.hs_token, path);

      const user = await get(`/_matrix/app/v1/user?uri=${encodeURIComponent(`irc://${server}/Carol`)}`);
      assert.deepEqual(user, { status: 200, body: { user_id: ghost("carol") } });
      const alias = await get(`/_matrix/app/v1/alias?uri=${encodeURIComponent(`irc://${server}/%23Lobby`)}`);
      assert.deepEqual(alias, { status: 200, body: { alias: ALIAS } });
      // Another IRC server is not ours.
      const other = await get(
        `/_matrix/app/v1/user?uri=${encodeURIComponent("irc://irc.example.net/Carol")}`,
      );
      assert.equal(other.status, 404);
      // The homeserver's credentials are required.
      const anonymous = await fetch(
        `http://127.0.0.1:${appservicePort}/_matrix/app/v1/users/${ghost("carol")}`,
      );
      assert.equal(anonymous.status, 401);
    }));

  it("the user query says 200 for an online nick and 404 for an offline one", () =>
    explain(async () => {
      const get = (userId: string) =>
        appserviceGet(
          appservicePort,
          registration.hs_token,
          `/_matrix/app/v1/users/${encodeURIComponent(userId)}`,
        );
      const online = await get(ghost("carol"));
      assert.equal(online.status, 200, JSON.stringify(online.body));
      const offline = await get(ghost("nobody_here"));
      assert.equal(offline.status, 404, JSON.stringify(offline.body));
      // Erin quit IRC in an earlier test: offline now.
      assert.equal((await get(ghost("erin"))).status, 404);
    }));

  it("nothing echoes: every line and event arrived exactly once", () =>
    explain(async () => {
      // One more round trip each way, then let anything that would loop have time to.
      await dana.send(roomId, "last matrix line");
      carol.send(`PRIVMSG ${CHANNEL} :last irc line`);
      await carol.waitFor((l) => fromBot("PRIVMSG")(l) && l.params[1] === "<Dana Matrix> last matrix line");
      await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.message" && e.content.body === "last irc line",
        "last IRC line",
      );
      await new Promise((r) => setTimeout(r, SETTLE_MS));

      // IRC side: exactly the three Matrix messages, no copies of IRC's own lines, no TOPIC from the bot.
      const botLines = carol.lines.filter((l) => fromBot("PRIVMSG")(l) || fromBot("NOTICE")(l));
      assert.deepEqual(
        botLines.map((l) => l.params[1]),
        [
          "<Dana Matrix> hello from matrix",
          "\x01ACTION Dana Matrix waves\x01",
          fileLine,
          "<Dana Matrix> last matrix line",
        ],
      );
      assert.equal(carol.lines.filter(fromBot("TOPIC")).length, 0, "the bot echoed a topic to IRC");

      // Matrix side: each IRC line once, from the ghost; each Matrix message once.
      const timeline = await dana.timeline(roomId);
      const bodies = (sender: string) =>
        timeline.filter((e) => e.type === "m.room.message" && e.sender === sender).map((e) => e.content.body);
      assert.deepEqual(bodies(ghost("carol")), ["hello from irc", "dances", "last irc line"]);
      assert.deepEqual(bodies(dana.userId), ["hello from matrix", "waves", "cat.txt", "last matrix line"]);
      // Nobody else spoke: not the bot, not a ghost of the bot's own nick (its IRC lines echoed back).
      const senders = new Set(timeline.filter((e) => e.type === "m.room.message").map((e) => e.sender));
      assert.deepEqual([...senders].sort(), [dana.userId, ghost("carol")].sort());
      const topics = timeline.filter((e) => e.type === "m.room.topic").map((e) => e.content.topic);
      assert.deepEqual(topics, ["Welcome to the lobby", "Topic set on IRC"]);
    }));

  it("after a restart the bridge rejoins the channel and delivers what Matrix sent meanwhile", () =>
    explain(async () => {
      const botJoins = () => carol.lines.filter((l) => l.command === "JOIN" && l.nick === BOT_NICK).length;
      const joinsBefore = botJoins();
      const status = await bridge!.stop();
      assert.deepEqual(status, { code: 0, signal: null }, "bridgekit start did not stop cleanly");
      earlierLogs.push(...bridge!.logs());
      await carol.waitFor((l) => l.command === "QUIT" && l.nick === BOT_NICK);
      // Synapse cannot deliver this now; it keeps the transaction and retries it.
      await dana.send(roomId, "sent while the bridge was down");
      await startBridge();
      // The channel joined on demand is remembered (in the store) and rejoined at start.
      await carol.waitFor(() => botJoins() > joinsBefore);
      const late = await carol.waitFor(
        (l) => fromBot("PRIVMSG")(l) && l.params[1] === "<Dana Matrix> sent while the bridge was down",
        45_000,
      );
      assert.ok(late);
      carol.send(`PRIVMSG ${CHANNEL} :after the restart`);
      const event = await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.message" && e.content.body === "after the restart",
        "IRC line after the restart",
      );
      assert.equal(event.sender, ghost("carol"));
      // The same portal: the alias still points at the room, and no second room was made.
      const resolved = await dana.request<{ room_id: string }>(
        "GET",
        `/_matrix/client/v3/directory/room/${encodeURIComponent(ALIAS)}`,
      );
      assert.equal(resolved.room_id, roomId);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const relayed = carol.lines.filter(
        (l) => fromBot("PRIVMSG")(l) && l.params[1] === "<Dana Matrix> sent while the bridge was down",
      );
      assert.equal(relayed.length, 1, "the message sent during the downtime reached IRC more than once");
    }));

  it("the bridge logged no errors", () => {
    const errors = (allLogs() as Array<{ level?: number; msg?: string; err?: { message?: string } }>).filter(
      (l) => (l.level ?? 0) >= 50,
    );
    assert.deepEqual(errors, []);
  });
});
