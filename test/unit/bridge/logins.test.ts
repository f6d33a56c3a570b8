// Logins through a whole Bridge on the fake homeserver: the management room, the login
// conversation (password and QR flows), routing by login / relay / bot / nobody, DMs both
// ways, logout, and reconnecting at start. The same paths run against Synapse in
// test/e2e/logins.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CommandContext, RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import type { FakeEvent } from "../../../src/testing/fake-homeserver.js";
import { openStore } from "../../../src/store/index.js";
import { Bridge } from "../../../src/bridge/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import {
  DOMAIN,
  startHarness,
  testConfig,
  testRegistration,
  type Harness,
  type HarnessOptions,
} from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { FakeNetwork, dmRoom, loginsAdapter } from "../../support/fake-network.js";

const ALICE = `@alice:${DOMAIN}`;
const BOT = `@bot:${DOMAIN}`;

type H = Harness<RemoteNetworkAdapter>;

async function harness(
  network: FakeNetwork,
  opts: HarnessOptions<RemoteNetworkAdapter> & { relayBot?: boolean } = {},
): Promise<H> {
  return startHarness<RemoteNetworkAdapter>({
    adapter: loginsAdapter(network, { relayBot: opts.relayBot }),
    ...opts,
  });
}

/** Runs `fn` with a bridge on a fake network that has the accounts alice (pw) and bob (pw2). */
async function withLogins(
  fn: (h: H, network: FakeNetwork) => Promise<void>,
  opts: HarnessOptions<RemoteNetworkAdapter> & { relayBot?: boolean } = {},
): Promise<void> {
  const network = new FakeNetwork();
  network.addAccount("alice", "pw");
  network.addAccount("bob", "pw2");
  const h = await harness(network, opts);
  try {
    await fn(h, network);
  } finally {
    await h.stop();
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The bot's notices in a room, as text. */
function notices(h: H, roomId: string): string[] {
  return h.hs
    .events(roomId, "m.room.message")
    .filter((e: FakeEvent) => e.sender === BOT && e.content.msgtype === "m.notice")
    .map((e) => String(e.content.body));
}

let n = 0;
/** A message event from `sender` in a room, pushed as the homeserver would. */
async function say(h: H, roomId: string, body: string, sender = ALICE): Promise<string> {
  const eventId = `$say${++n}`;
  assert.equal(
    await h.push([{ event_id: eventId, room_id: roomId, sender, content: { msgtype: "m.text", body } }]),
    200,
  );
  await h.bridge.appservice.drain();
  return eventId;
}

/** Alice opens a DM with the bot: the room the fake homeserver has, and the invite pushed. */
async function managementRoom(h: H, user = ALICE): Promise<string> {
  const roomId = h.hs.createRoomDirect(user, "invite");
  h.hs.rooms.get(roomId)!.members.set(BOT, "invite");
  await h.push([
    {
      type: "m.room.member",
      room_id: roomId,
      sender: user,
      state_key: BOT,
      content: { membership: "invite", is_direct: true },
    },
  ]);
  await h.bridge.appservice.drain();
  return roomId;
}

/** Alice invites a ghost to a new direct room, as a Matrix client starting a DM does. */
async function inviteGhost(h: H, remoteId: string): Promise<{ room: string; bob: string }> {
  const room = h.hs.createRoomDirect(ALICE, "invite");
  const bob = h.bridge.ghosts.userId(remoteId);
  h.hs.rooms.get(room)!.members.set(bob, "invite");
  await h.push([
    {
      type: "m.room.member",
      room_id: room,
      sender: ALICE,
      state_key: bob,
      content: { membership: "invite", is_direct: true },
    },
  ]);
  await h.bridge.appservice.drain();
  return { room, bob };
}

async function logIn(h: H, room: string, user = "alice", password = "pw"): Promise<void> {
  const sender = `@${user}:${DOMAIN}`;
  await say(h, room, "login", sender);
  await say(h, room, user, sender);
  await say(h, room, password, sender);
}

describe("the management room", () => {
  it("is a DM the bot joins when invited, greeting with help", async () => {
    await withLogins(async (h) => {
      const room = await managementRoom(h);
      assert.equal(h.hs.rooms.get(room)!.members.get(BOT), "join");
      const said = notices(h, room).join("\n");
      assert.match(said, /Hello! I am the fake bridge bot/);
      assert.match(said, /`login \[flow\]`: log in to your remote account/);
      assert.equal((await h.bridge.users.getUser(ALICE))?.managementRoom, room);
    });
  });

  it("is refused, with the reason, to users the config does not allow", async () => {
    const h = await harness(new FakeNetwork(), {
      configure: (c) => (c.permissions = { [DOMAIN]: "user" }),
    });
    try {
      const room = await managementRoom(h, "@mallory:elsewhere.net");
      const leave = h.hs.requestsTo("POST", /\/leave$/).find((r) => r.path.includes(room));
      assert.ok(leave, "the bot rejects the invite");
      assert.equal((leave.json as { reason?: string }).reason, "you are not allowed to use this bridge");
      assert.equal(await h.bridge.users.getUser("@mallory:elsewhere.net"), undefined, "nothing stored");
    } finally {
      await h.stop();
    }
  });

  it("answers unknown commands with a hint, never silence", async () => {
    await withLogins(async (h) => {
      const room = await managementRoom(h);
      await say(h, room, "logni");
      assert.match(
        notices(h, room).at(-1)!,
        /^Unknown command "logni"; did you mean `login`\? Send `help` for the list\.$/,
      );
      await say(h, room, "logout everything else");
      assert.match(notices(h, room).at(-1)!, /^Unexpected "else"\. Usage: `logout \[login\]`\.$/);
    });
  });
});

describe("adapter commands", () => {
  it("run with typed arguments and the user's login, and say what is missing", async () => {
    const network = new FakeNetwork();
    network.addAccount("alice", "pw");
    const adapter = loginsAdapter(network);
    const ran: unknown[] = [];
    Object.assign(adapter, {
      commands: [
        {
          name: "nick",
          help: "change your nick",
          args: [{ name: "new" }, { name: "times", type: "integer", optional: true }],
          requires: "login",
          async run(args: Record<string, string | number>, cmd: CommandContext) {
            ran.push([args, cmd.login?.login.id, cmd.roomId]);
            await cmd.reply(`nick is now ${String(args.new)}`);
          },
        },
      ],
    });
    const h = await startHarness<RemoteNetworkAdapter>({ adapter });
    try {
      const room = await managementRoom(h);
      await say(h, room, "nick alice_m");
      assert.equal(notices(h, room).at(-1), "`nick` needs a connected login: send `login` first.");
      await logIn(h, room);
      await say(h, room, "nick alice_m often");
      assert.match(
        notices(h, room).at(-1)!,
        /<times> must be a whole number, got "often"\. Usage: `nick <new> \[times\]`/,
      );
      await say(h, room, "nick alice_m 2");
      assert.equal(notices(h, room).at(-1), "nick is now alice_m");
      assert.deepEqual(ran, [[{ new: "alice_m", times: 2 }, "alice", room]]);
      await say(h, room, "help");
      assert.match(notices(h, room).at(-1)!, /`nick <new> \[times\]`: change your nick/);
    } finally {
      await h.stop();
    }
  });

  it("may not take a built-in command's name", async () => {
    const adapter = loginsAdapter(new FakeNetwork());
    Object.assign(adapter, { commands: [{ name: "login", help: "", run: () => Promise.resolve() }] });
    const store = await openStore("memory://");
    assert.throws(
      () =>
        new Bridge({
          config: testConfig("http://127.0.0.1:1"),
          registration: testRegistration(),
          adapter,
          store,
          logger: silentLogger(),
        }),
      /command "login" has the name of a built-in one/,
    );
    await store.close();
  });
});

describe("logging in through the management room", () => {
  it("asks each field, redacts the password, stores the login and connects its session", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await say(h, room, "login");
      assert.match(notices(h, room).at(-1)!, /Log in to the fake network\.\nUsername\?/);
      await say(h, room, "Alice!");
      assert.match(notices(h, room).at(-1)!, /"Alice!" is not a valid Username\. Try again/);
      await say(h, room, "alice");
      assert.match(notices(h, room).at(-1)!, /^Password\? I will remove your message/);
      const secret = await say(h, room, "pw");
      const redactions = h.hs.requestsTo("PUT", /\/redact\//);
      assert.ok(
        redactions.some((r) => r.path.includes(secret)),
        "the message with the password is redacted",
      );
      assert.equal(notices(h, room).at(-1), "Logged in as alice on fake.");
      assert.equal(network.sessions.get("alice")?.disconnected, false);
      const stored = await h.bridge.users.loginsOf(ALICE);
      assert.deepEqual(
        stored.map((l) => [l.id, l.name]),
        [["alice", "alice on fake"]],
      );
      await say(h, room, "logins");
      assert.equal(notices(h, room).at(-1), "- alice on fake (alice): connected");
    });
  });

  it("says why a login failed and stores nothing", async () => {
    await withLogins(async (h) => {
      const room = await managementRoom(h);
      await logIn(h, room, "alice", "wrong");
      assert.equal(notices(h, room).at(-1), "Login failed: wrong username or password.");
      assert.deepEqual(await h.bridge.users.loginsOf(ALICE), []);
      await say(h, room, "login nosuchflow");
      assert.match(
        notices(h, room).at(-1)!,
        /There is no login flow "nosuchflow"; the flows are: password, qr/,
      );
    });
  });

  it("shows a QR code and finishes when the remote side scans it, without holding the room", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await say(h, room, "login qr");
      const shown = notices(h, room).at(-1)!;
      const code = /`(qr-[a-z0-9]+)`/.exec(shown)?.[1];
      assert.ok(code, shown);
      await say(h, room, "ping"); // the room is not held up by the wait
      assert.match(notices(h, room).at(-1)!, /^Pong/);
      assert.ok(network.scan(code, "alice"));
      await waitFor("the login to complete", () => notices(h, room).includes("Logged in as alice."));
      assert.ok(network.sessions.get("alice"));
    });
  });

  it("refuses to log in outside the management room, where answers would be bridged", async () => {
    await withLogins(async (h, network) => {
      const portal = await h.portal("lobby");
      await say(h, portal.roomId, "!fake login");
      assert.equal(
        notices(h, portal.roomId).at(-1),
        "Log in in a direct chat with me, not here: I have sent you one.",
      );
      const dm = (await h.bridge.users.getUser(ALICE))?.managementRoom;
      assert.ok(dm, "a management room was made");
      assert.deepEqual(notices(h, dm), ["Send `login` here to log in."]);
      await say(h, portal.roomId, "alice");
      assert.deepEqual(network.sent, [], "nothing asked a question in the portal");
    });
  });

  it("cancels a login in progress", async () => {
    await withLogins(async (h) => {
      const room = await managementRoom(h);
      await say(h, room, "login");
      await say(h, room, "cancel");
      assert.equal(notices(h, room).at(-1), "Login cancelled.");
      await say(h, room, "alice"); // no longer an answer: an unknown command
      assert.match(notices(h, room).at(-1)!, /^Unknown command "alice"/);
    });
  });
});

describe("routing Matrix -> remote", () => {
  it("sends a logged-in user's message through their own session", async () => {
    await withLogins(
      async (h, network) => {
        const room = await managementRoom(h);
        await logIn(h, room);
        const portal = await h.portal("lobby");
        await say(h, portal.roomId, "hello as me");
        assert.deepEqual(network.sent, [{ as: "alice", room: "lobby", text: "hello as me" }]);
      },
      { relayBot: true },
    );
  });

  it("relays a user without a login through the portal's relay login, naming them", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await logIn(h, room);
      const portal = await h.portal("lobby");
      const levels = h.hs.rooms.get(portal.roomId)!;
      levels.state.set("m.room.power_levels\0", {
        event_id: "$pl",
        room_id: portal.roomId,
        type: "m.room.power_levels",
        sender: BOT,
        state_key: "",
        content: { users: { [ALICE]: 50 } },
        origin_server_ts: 0,
      });
      await say(h, portal.roomId, "!fake relay set");
      assert.equal(
        notices(h, portal.roomId).at(-1),
        "alice on fake now relays messages of people without a login in this room.",
      );
      await say(h, portal.roomId, "hi all", `@bob:${DOMAIN}`);
      assert.deepEqual(network.sent.at(-1), {
        as: "alice",
        room: "lobby",
        text: "<bob> hi all",
        relayed: true,
      });
      await say(h, portal.roomId, "!fake relay unset");
      await say(h, portal.roomId, "anyone?", `@bob:${DOMAIN}`);
      const told = notices(h, portal.roomId).at(-1)!;
      assert.match(told, /not logged in to the fake network: send `login` to @bot:example\.org/);
    });
  });

  it("refuses `relay set` to someone who is not a room moderator", async () => {
    await withLogins(async (h) => {
      await logIn(h, await managementRoom(h));
      const portal = await h.portal("lobby");
      await say(h, portal.roomId, "!fake relay set");
      assert.match(notices(h, portal.roomId).at(-1)!, /^Only room moderators/);
      assert.equal((await h.bridge.portals.get("lobby"))?.relay, undefined);
    });
  });

  it("falls back to the bot-level handlers for a user without a login", async () => {
    await withLogins(
      async (h, network) => {
        const portal = await h.portal("lobby");
        await say(h, portal.roomId, "hello from nowhere", `@carol:${DOMAIN}`);
        assert.deepEqual(network.sent, [{ as: "bot", room: "lobby", text: "<carol> hello from nowhere" }]);
      },
      { relayBot: true },
    );
  });

  it("tells a user without permission, and relays nothing", async () => {
    await withLogins(
      async (h, network) => {
        const portal = await h.portal("lobby");
        await say(h, portal.roomId, "let me in", "@eve:elsewhere.net");
        assert.deepEqual(network.sent, []);
        assert.match(notices(h, portal.roomId).at(-1)!, /you are not allowed to use this bridge/);
      },
      {
        relayBot: true,
        configure: (c) => (c.permissions = { [DOMAIN]: "user" }),
      },
    );
  });
});

describe("direct chats", () => {
  it("starts one when a logged-in user invites a ghost to a direct room", async () => {
    await withLogins(async (h, network) => {
      await logIn(h, await managementRoom(h));
      const { room, bob } = await inviteGhost(h, "bob");
      assert.equal(h.hs.rooms.get(room)!.members.get(bob), "join");
      const portal = await h.bridge.portals.get(dmRoom("alice", "bob"), "alice");
      assert.equal(portal?.roomId, room);
      await say(h, room, "hi bob");
      assert.deepEqual(network.sent.at(-1), { as: "alice", room: dmRoom("alice", "bob"), text: "hi bob" });
    });
  });

  it("has the ghost reject the invite of a user without a login, saying why", async () => {
    await withLogins(async (h) => {
      const { bob } = await inviteGhost(h, "bob");
      const leave = h.hs.requestsTo("POST", /\/leave$/).find((r) => r.userId === bob);
      assert.match(
        String((leave?.json as { reason?: string })?.reason),
        /^log in first: send `login` to @bot:example\.org$/,
      );
    });
  });

  it("makes a DM portal when a remote user writes to a login, inviting its user", async () => {
    await withLogins(async (h, network) => {
      await logIn(h, await managementRoom(h));
      await network.directMessage("bob", "alice", "psst");
      await h.bridge.flush();
      const portal = await h.bridge.portals.get(dmRoom("alice", "bob"), "alice");
      assert.ok(portal, "a DM portal for alice's login");
      const created = h.hs.requestsTo("POST", /\/createRoom$/).at(-1)!.json as {
        is_direct?: boolean;
        invite?: string[];
      };
      assert.equal(created.is_direct, true);
      assert.deepEqual(created.invite, [ALICE]);
      const bob = h.bridge.ghosts.userId("bob");
      const said = h.hs.events(portal.roomId, "m.room.message").map((e) => [e.sender, e.content.body]);
      assert.deepEqual(said, [[bob, "psst"]]);
      assert.equal(await h.bridge.portals.get(dmRoom("alice", "bob")), null, "not a shared portal");
    });
  });
});

describe("logins over time", () => {
  it("logout stops the session and forgets the login", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await logIn(h, room);
      const session = network.sessions.get("alice")!;
      await say(h, room, "logout");
      assert.equal(notices(h, room).at(-1), "Logged out: alice on fake.");
      assert.equal(session.disconnected, true);
      assert.ok(network.revoked.has("alice"), "the session's remote logout ran");
      assert.deepEqual(await h.bridge.users.loginsOf(ALICE), []);
    });
  });

  it("reconnects stored logins at start, and tells the user when one no longer works", async () => {
    const network = new FakeNetwork();
    network.addAccount("alice", "pw");
    network.addAccount("bob", "pw2");
    const store = await openStore("memory://");
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const first = await harness(network, { store, hs, registration });
    const room = await managementRoom(first);
    await logIn(first, room);
    const bobRoom = await managementRoom(first, `@bob:${DOMAIN}`);
    await logIn(first, bobRoom, "bob", "pw2");
    await first.stop();
    assert.equal(network.sessions.size, 0, "stop disconnects every session");

    network.revoked.add("bob");
    const second = await harness(network, { store, hs, registration });
    try {
      await second.bridge.loginsConnected();
      assert.ok(network.sessions.get("alice"), "alice's login is back");
      const states = await second.bridge.logins!.of(`@bob:${DOMAIN}`);
      assert.equal(states[0]?.state, "bad_credentials");
      assert.match(
        notices(second, bobRoom).at(-1)!,
        /Your login bob on fake needs you to log in again: the token was revoked/,
      );
    } finally {
      await second.stop();
    }

    // The network is down at the next start: Alice's message waits for her login instead of
    // going out through the bot as someone without one.
    network.down = true;
    const third = await harness(network, {
      store,
      hs,
      registration,
      relayBot: true,
      configure: (c) => (c.inbox.retry.maxAttempts = 1000), // the test's retries are 10-100 ms apart
    });
    try {
      await third.bridge.loginsConnected();
      assert.equal(third.bridge.logins!.get("alice")?.state, "transient_disconnect");
      const portal = await third.portal("lobby");
      assert.equal(
        await third.push([
          { room_id: portal.roomId, sender: ALICE, content: { msgtype: "m.text", body: "after the outage" } },
        ]),
        200,
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(network.sent, [], "not relayed by the bot meanwhile");
      network.down = false; // the login's next try (after 1 s) connects and wakes the room
      await waitFor("the message through alice's session", () => network.sent.length > 0, 5_000);
      assert.deepEqual(network.sent, [{ as: "alice", room: "lobby", text: "after the outage" }]);
    } finally {
      await third.stop();
      await hs.close();
      await store.close();
    }
  });
});

describe("double puppeting", () => {
  it("sends what the user wrote from another client as the user, with a token they handed over", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await logIn(h, room);
      h.hs.addAccessToken("alice-phone-token", ALICE);
      const secret = await say(h, room, "login-matrix alice-phone-token");
      assert.equal(
        notices(h, room).at(-1),
        "Double puppeting is on: what you send from other clients appears as you.",
      );
      assert.ok(
        h.hs.requestsTo("PUT", /\/redact\//).some((r) => r.path.includes(secret)),
        "the token is redacted",
      );
      assert.equal(await h.bridge.users.getDoublePuppetToken(ALICE), "alice-phone-token");

      const portal = await h.portal("lobby");
      h.hs.rooms.get(portal.roomId)!.members.set(ALICE, "join");
      const session = network.sessions.get("alice")!;
      await session.ctx.send("lobby", "alice", "written on my phone");
      await session.ctx.send("lobby", "bob", "bob answers");
      await h.bridge.flush();
      const said = h.hs.events(portal.roomId, "m.room.message").map((e) => [e.sender, e.content.body]);
      assert.deepEqual(said, [
        [ALICE, "written on my phone"],
        [h.bridge.ghosts.userId("bob"), "bob answers"],
      ]);

      // The homeserver pushes the puppet's event back: it is the bridge's own echo.
      const echo = h.hs.events(portal.roomId, "m.room.message")[0]!;
      assert.equal(echo.content["fi.mau.double_puppet_source"], h.registration.id);
      const before = network.sent.length;
      await h.push([{ ...echo }]);
      await h.bridge.appservice.drain();
      assert.equal(network.sent.length, before, "not sent to the remote network again");
    });
  });

  it("falls back to the ghost and tells the user once when the token stops working", async () => {
    await withLogins(async (h, network) => {
      const room = await managementRoom(h);
      await logIn(h, room);
      await say(h, room, "login-matrix not-a-token");
      assert.match(notices(h, room).at(-1)!, /^Double puppeting for @alice:example\.org failed/);
      assert.equal(
        await h.bridge.users.getDoublePuppetToken(ALICE),
        undefined,
        "a refused token is not stored",
      );

      h.hs.addAccessToken("good", ALICE);
      await say(h, room, "login-matrix good");
      h.hs.revokeAccessToken("good");
      const portal = await h.portal("lobby");
      h.hs.rooms.get(portal.roomId)!.members.set(ALICE, "join");
      const session = network.sessions.get("alice")!;
      await session.ctx.send("lobby", "alice", "one");
      await session.ctx.send("lobby", "alice", "two");
      await h.bridge.flush();
      const said = h.hs.events(portal.roomId, "m.room.message").map((e) => [e.sender, e.content.body]);
      const ghost = h.bridge.ghosts.userId("alice");
      assert.deepEqual(said, [
        [ghost, "one"],
        [ghost, "two"],
      ]);
      const told = notices(h, room).filter((t) => t.includes("appears as your ghost"));
      assert.equal(told.length, 1, told.join("\n"));
    });
  });
});

describe("secrets in the store", () => {
  it("never writes a password typed in the management room or a login-matrix token", async () => {
    const network = new FakeNetwork();
    network.addAccount("alice", "pw-s3cret-value");
    const store = await openStore("memory://");
    const written: string[] = [];
    const namespace = store.namespace.bind(store);
    store.namespace = <V>(name: string) => {
      const kv = namespace<V>(name);
      const set = kv.set.bind(kv);
      const setMany = kv.setMany.bind(kv);
      kv.set = (key, value, ttl) => {
        written.push(JSON.stringify(value));
        return set(key, value, ttl);
      };
      kv.setMany = (entries) => {
        written.push(JSON.stringify(entries));
        return setMany(entries);
      };
      return kv;
    };
    const h = await harness(network, {
      store,
      configure: (c) => (c.logins.encryptionKey = "a-key-of-32-characters-or-more!!"),
    });
    try {
      const room = await managementRoom(h);
      await logIn(h, room, "alice", "pw-s3cret-value");
      assert.equal(notices(h, room).at(-1), "Logged in as alice on fake.");
      h.hs.addAccessToken("tok-s3cret-value", ALICE);
      await say(h, room, "login-matrix tok-s3cret-value");
      const all = written.join("\n");
      assert.ok(all.includes("org.matrix.bridgekit.withheld"), "the messages were recorded, without content");
      assert.ok(!all.includes("pw-s3cret-value"), "the password never reached the store");
      assert.ok(!all.includes("tok-s3cret-value"), "nor the token (sealed in the user store)");
    } finally {
      await h.stop();
      await store.close();
    }
  });

  it("asks again for a message recorded without its secret and not handled before a restart", async () => {
    await withLogins(async (h) => {
      const room = await managementRoom(h);
      await h.push([{ room_id: room, sender: ALICE, content: { "org.matrix.bridgekit.withheld": true } }]);
      await h.bridge.appservice.drain();
      assert.match(notices(h, room).at(-1)!, /^I restarted before reading your last message/);
    });
  });
});
