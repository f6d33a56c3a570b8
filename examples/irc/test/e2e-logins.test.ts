/**
 * IRC logins end to end: a real ngircd, a real Synapse and the real `bridgekit start` in a
 * child process. Two Matrix users log in from their management rooms and are seen on IRC
 * under their own nicks in a channel (an IRC client sees `alice_m`, not `<Alice>` from the
 * bot); an IRC user's private message to a login opens a DM portal and gets an answer from
 * that nick, and a Matrix user inviting an IRC user's ghost opens a query from theirs; after
 * a restart both users are back on IRC under the same nicks. Needs root, the provisioned
 * Synapse root and ngircd (installed if missing); fails, never skips.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MatrixEvent, Registration } from "matrix-bridgekit";
import { freePort, startSynapse, type SynapseInstance } from "../../../test/e2e/support/synapse.js";
import { createDirectRoom, loginsWaits } from "../../../test/e2e/support/logins-e2e.js";
import type { FakeNetwork } from "../../../test/support/fake-network.js";
import {
  startBridgeProcess,
  type BridgeProcess,
  type LogLine,
} from "../../../test/e2e/support/bridge-process.js";
import { Ngircd } from "./ngircd.js";
import { RawIrcClient, type IrcLine } from "./raw-client.js";
import {
  ALIAS,
  BOT_NICK,
  BOT_USER,
  CHANNEL,
  DOMAIN,
  ghost,
  ircRegistration,
  MatrixUser,
  poll,
  writeIrcBridgeFiles,
} from "./e2e-support.js";

describe("IRC logins end to end: each Matrix user on ngircd as themselves", () => {
  let ngircd: Ngircd | undefined;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  const earlierLogs: LogLine[] = [];
  let registration: Registration;
  let dir: string;
  let configPath: string;
  let carol: RawIrcClient;
  let alice: MatrixUser;
  let bob: MatrixUser;
  let portal = "";
  const logTail = () =>
    `--- bridge (last output) ---\n${bridge?.stderr().slice(-2000) ?? ""}\n${bridge?.stdout().slice(-5000) ?? ""}`;
  // Only the Matrix-side waits are used (the "network" here is ngircd, watched through Carol).
  const { ask, seen } = loginsWaits({ network: {} as FakeNetwork, botUserId: BOT_USER, logTail });
  const privmsg = (nick: string, target: string, text: string) => (l: IrcLine) =>
    l.command === "PRIVMSG" &&
    l.nick === nick &&
    l.params[0]?.toLowerCase() === target.toLowerCase() &&
    l.params[1] === text;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-irc-logins-e2e-"));
    ngircd = await Ngircd.start();
    carol = await RawIrcClient.connect(ngircd.port, "Carol");
    await carol.join(CHANNEL);
    const appservicePort = await freePort();
    registration = ircRegistration("irc-logins-e2e", appservicePort);
    synapse = await startSynapse({ registrations: [registration], serverName: DOMAIN });
    ({ configPath } = await writeIrcBridgeFiles(dir, {
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      appservicePort,
      registration,
      extraConfig: { logins: { encryptionKey: "irc-logins-e2e-encryption-key-0123" } },
      adapterConfig: {
        server: "127.0.0.1",
        port: ngircd.port,
        nick: BOT_NICK,
        channels: [CHANNEL],
        floodLines: 50,
        floodIntervalMs: 1000,
        reconnectDelayMs: 100,
        reconnectMaxDelayMs: 1000,
        timeoutMs: 10_000,
      },
    }));
    bridge = await startBridgeProcess(configPath);
    const a = await synapse.registerUser("alice");
    alice = new MatrixUser(synapse.url, a.userId, a.accessToken);
    await alice.setDisplayName("Alice");
    const b = await synapse.registerUser("bob");
    bob = new MatrixUser(synapse.url, b.userId, b.accessToken);
    await bob.setDisplayName("Bob");
  });

  after(async () => {
    carol?.destroy();
    await bridge?.stop();
    await synapse?.stop();
    await ngircd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function logIn(user: MatrixUser, nick: string): Promise<void> {
    const room = await createDirectRoom(user, BOT_USER);
    await poll(
      async () => ((await user.joinedMembers(room)).includes(BOT_USER) ? true : undefined),
      () => `the bot did not join ${user.userId}'s management room\n${logTail()}`,
    );
    await ask(user, room, "login", /^Log in to IRC on 127\.0\.0\.1\.\nNick/);
    await ask(user, room, nick, `Logged in as ${nick} on 127.0.0.1.`);
  }

  it("two Matrix users log in and are seen in the channel under their own nicks", async () => {
    portal = await alice.join(ALIAS);
    assert.equal(await bob.join(ALIAS), portal);
    await logIn(alice, "alice_m");
    await logIn(bob, "bob_m");
    // They were in the portal before logging in: their connections join #Lobby by themselves.
    for (const nick of ["alice_m", "bob_m"])
      await carol.waitFor((l) => l.command === "JOIN" && l.nick === nick, 20_000);
    await alice.send(portal, "hello from alice");
    await bob.send(portal, "hello from bob");
    const a = await carol.waitFor(privmsg("alice_m", CHANNEL, "hello from alice"), 20_000);
    const b = await carol.waitFor(privmsg("bob_m", CHANNEL, "hello from bob"), 20_000);
    assert.ok(a && b);
    // Each joined #Lobby as itself; the bot relayed neither (no `<Alice> …` line).
    for (const nick of ["alice_m", "bob_m"])
      assert.ok(
        carol.lines.some((l) => l.command === "JOIN" && l.nick === nick),
        `${nick} joined ${CHANNEL}`,
      );
    assert.equal(
      carol.lines.filter((l) => l.command === "PRIVMSG" && l.nick === BOT_NICK).length,
      0,
      "the bot relayed nothing",
    );
    // An IRC line reaches both in Matrix from Carol's ghost; the logins' nicks get no ghosts.
    carol.send(`PRIVMSG ${CHANNEL} :hi both`);
    await seen(
      alice,
      portal,
      (e) => e.sender === ghost("carol") && e.content.body === "hi both",
      "carol's line",
    );
    const members = await alice.joinedMembers(portal);
    assert.equal(
      members.includes(ghost("alice_m")) || members.includes(ghost("bob_m")),
      false,
      members.join(", "),
    );
  });

  it("an IRC user's private message opens a DM portal with the Matrix user, and the answer comes from their nick", async () => {
    carol.send("PRIVMSG alice_m :psst, alice");
    // The bridge logs the DM portal it made for alice's login; alice is invited to it as a direct chat.
    const created = await poll(
      () =>
        Promise.resolve(
          bridge!
            .logs()
            .find((l) => l.msg === "DM portal created" && l.remoteId === "pm,carol" && l.login === "alice_m"),
        ),
      () => `no DM portal was made for alice_m and Carol\n${logTail()}`,
    );
    const dm = String(created.roomId);
    let invites: unknown;
    const invite = await poll(
      async () => {
        const sync = await alice.request<{
          rooms?: { invite?: Record<string, { invite_state: { events: MatrixEvent[] } }> };
        }>("GET", "/_matrix/client/v3/sync?timeout=0");
        invites = sync.rooms?.invite;
        return sync.rooms?.invite?.[dm]?.invite_state.events.find(
          (e) => e.type === "m.room.member" && e.state_key === alice.userId,
        );
      },
      () => `alice has no invite to ${dm}; invites: ${JSON.stringify(invites)}\n${logTail()}`,
    );
    assert.equal(invite.content.is_direct, true, "the invite is a direct chat's");
    await alice.join(dm);
    await seen(
      alice,
      dm,
      (e) => e.sender === ghost("carol") && e.content.body === "psst, alice",
      "carol's DM",
    );
    await alice.send(dm, "hi carol, alice here");
    const answer = await carol.waitFor(privmsg("alice_m", "Carol", "hi carol, alice here"), 20_000);
    assert.ok(answer);
  });

  it("a Matrix user inviting an IRC user's ghost to a direct chat opens a query from their nick", async () => {
    const room = await createDirectRoom(bob, ghost("carol"));
    await poll(
      async () => ((await bob.joinedMembers(room)).includes(ghost("carol")) ? true : undefined),
      () => `carol's ghost did not join bob's direct chat\n${logTail()}`,
    );
    await bob.send(room, "hi carol, bob here");
    await carol.waitFor(privmsg("bob_m", "Carol", "hi carol, bob here"), 20_000);
    carol.send("PRIVMSG bob_m :hello bob");
    await seen(
      bob,
      room,
      (e) => e.sender === ghost("carol") && e.content.body === "hello bob",
      "carol's answer",
    );
  });

  it("after a restart both users are back on IRC under the same nicks", async () => {
    const status = await bridge!.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    earlierLogs.push(...bridge!.logs());
    await carol.waitFor((l) => l.command === "QUIT" && l.nick === "alice_m");
    await carol.waitFor((l) => l.command === "QUIT" && l.nick === "bob_m");
    const joins = (nick: string) => carol.lines.filter((l) => l.command === "JOIN" && l.nick === nick).length;
    const before = { alice: joins("alice_m"), bob: joins("bob_m") };
    bridge = await startBridgeProcess(configPath);
    // The stored logins reconnect with their nicks and rejoin their channel by themselves.
    await carol.waitFor(() => joins("alice_m") > before.alice && joins("bob_m") > before.bob, 30_000);
    await alice.send(portal, "alice after the restart");
    await bob.send(portal, "bob after the restart");
    await carol.waitFor(privmsg("alice_m", CHANNEL, "alice after the restart"), 20_000);
    await carol.waitFor(privmsg("bob_m", CHANNEL, "bob after the restart"), 20_000);
  });

  it("the bridge logged no errors", () => {
    const errors = [...earlierLogs, ...(bridge?.logs() ?? [])].filter(
      (l) => ((l as { level?: number }).level ?? 0) >= 50,
    );
    assert.deepEqual(errors, []);
  });
});
