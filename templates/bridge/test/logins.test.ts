/**
 * Logins, two ways:
 * - through the framework: a real Bridge and a fake homeserver (harness.ts). Alice logs in by
 *   talking to the bot, as she would in a Matrix client, and then talks on the network as
 *   herself; remote users reach her in a direct chat; after `logout`, the relay carries her;
 * - without a homeserver: LoginDriver (matrix-bridgekit/testing) runs the login flow through
 *   the framework's checks, and connects the session with a context that records what it sends.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { LoginDriver, testCall } from "matrix-bridgekit/testing";
import { createAdapter } from "../src/adapter.js";
import { InMemoryNetwork } from "../src/remote-network.js";
import { silentLogger, type MatrixMessage } from "matrix-bridgekit";
import {
  eventually,
  managementRoom,
  MATRIX_USER,
  notices,
  say,
  startBridge,
  stopBridge,
  type Running,
} from "./harness.js";

const ACCOUNTS = { alice: "correct horse" };

describe("{{name}} logins through the bridge", () => {
  let r: Running;
  let room: string;
  before(async () => {
    r = await startBridge({ rooms: ["lobby"], echoUser: null, accounts: ACCOUNTS });
    room = await managementRoom(r);
  });
  after(async () => {
    await stopBridge(r);
  });

  it("refuses a wrong password, and removes it from the room", async () => {
    await say(r, room, "login");
    await say(r, room, "alice");
    const secret = await say(r, room, "not the password");
    assert.equal(notices(r, room).at(-1), "Login failed: wrong username or password.");
    const redacted = r.hs.events(room, "m.room.redaction").map((e) => e.content.redacts);
    assert.ok(redacted.includes(secret), "the bot redacted the message holding the password");
  });

  it("logs in with the password flow, and the user then talks on the network as the account", async () => {
    await say(r, room, "login");
    assert.match(notices(r, room).join("\n"), /Log in to your {{network}} account\.[\s\S]*Username\?/);
    await say(r, room, "alice");
    await say(r, room, "correct horse");
    assert.equal(notices(r, room).at(-1), "Logged in as alice on {{network}}.");

    const lobby = await r.bridge.portals.ensure("lobby");
    await say(r, lobby.roomId, "hello as myself");
    const sent = r.network.messages("lobby").find((m) => m.text === "hello as myself");
    assert.equal(sent?.from, "alice", "the network saw the account, not the bridge's relay");
    await r.bridge.flush();
    const ghostAlice = r.bridge.ghosts.userId("alice");
    assert.ok(
      !r.hs.events(lobby.roomId, "m.room.message").some((e) => e.sender === ghostAlice),
      "no echo of her own message from a ghost",
    );
  });

  it("brings a remote user's direct message into the login's own DM portal, and the answer goes back", async () => {
    r.network.addUser("bob", "Bob");
    const dm = r.remote.openDM("bob", "alice");
    r.remote.post(dm, "bob", "psst, alice");
    const ghostBob = r.bridge.ghosts.userId("bob");
    const message = await eventually(
      () =>
        [...r.hs.rooms.keys()]
          .flatMap((id) => r.hs.events(id, "m.room.message"))
          .find((e) => e.sender === ghostBob && e.content.body === "psst, alice"),
      "bob's message on Matrix",
    );
    const portal = r.hs.rooms.get(message.room_id)!;
    assert.equal(portal.members.get(MATRIX_USER), "invite", "alice is invited to the direct chat");
    assert.equal(await r.bridge.portals.get(dm), null, "not a shared portal: the login's own");

    await say(r, message.room_id, "hi bob");
    assert.equal(r.network.messages(dm).find((m) => m.text === "hi bob")?.from, "alice");
  });

  it("logs out: the account is signed out, and the relay carries the user again", async () => {
    await say(r, room, "logout");
    assert.equal(notices(r, room).at(-1), "Logged out: alice on {{network}}.");
    const lobby = (await r.bridge.portals.get("lobby"))!;
    await say(r, lobby.roomId, "relayed now");
    assert.equal(r.network.messages("lobby").find((m) => m.text === "relayed now")?.from, MATRIX_USER);
  });
});

describe("{{name}} logins without a homeserver (LoginDriver)", () => {
  function logins(network = new InMemoryNetwork()) {
    return {
      network,
      logins: createAdapter(network, { echoUser: null, accounts: ACCOUNTS }, silentLogger()).logins,
    };
  }

  it("checks the answers before the flow sees them, and says why a login fails", async () => {
    const driver = new LoginDriver(logins().logins);
    const step = await driver.start("password");
    assert.deepEqual(step.type === "user_input" ? step.fields.map((f) => [f.id, f.type]) : [], [
      ["username", "username"],
      ["password", "password"],
    ]);
    await assert.rejects(
      driver.submit({ username: "no spaces", password: "x" }),
      /"no spaces" is not a valid Username/,
    );
    await driver.start("password");
    await assert.rejects(
      driver.submit({ username: "alice", password: "wrong" }),
      /login failed: wrong username or password/,
    );
  });

  it("connects a session that posts as the account and opens DM portals for direct chats", async () => {
    const { network, logins: capability } = logins();
    const driver = new LoginDriver(capability, { userId: MATRIX_USER });
    await driver.start();
    await driver.submit({ username: "alice", password: "correct horse" });
    const { session, ctx } = await driver.connect();
    network.addRoom("lobby");

    const message = {
      eventId: "$1",
      sender: { userId: MATRIX_USER, displayName: "Alice" },
      ts: 1,
      msgtype: "m.text",
      body: "hi",
      raw: {},
    } as MatrixMessage;
    const id = await session.onMessage!(message, ctx.portal("lobby"), testCall());
    assert.equal(network.messages("lobby").find((m) => m.id === id)?.from, "alice");

    network.addUser("bob");
    const bob = network.connect(() => {});
    const dm = bob.openDM("bob", "alice");
    bob.post(dm, "bob", "psst");
    const sent = await ctx.waitFor((c) => c.method === "send");
    assert.deepEqual([sent.room, sent.from, sent.args[0]], [dm, "bob", "psst"]);
    const ensured = ctx.calls.find((c) => c.method === "ensurePortal");
    assert.deepEqual(ensured?.args[0], { direct: true, members: ["bob"] });

    // What the account writes from another client (its phone): the session bridges it, from the
    // login's own id, which the framework shows as the Matrix user when double puppeting is on.
    bob.post("lobby", "alice", "from my phone");
    const own = await ctx.waitFor((c) => c.method === "send" && c.room === "lobby");
    assert.deepEqual([own.from, own.args[0]], ["alice", "from my phone"]);

    await session.logout!(testCall());
    await session.disconnect();
    assert.throws(
      () => network.connectAccount(String((ctx.login.data as { token: string }).token), () => {}),
      /not valid/,
    );
  });
});
