import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { UserNotInNamespaceError } from "../../../src/client/index.js";
import { createLogger } from "../../../src/common/logger.js";
import { ValidationError } from "../../../src/common/validation-error.js";
import { generateDoublePuppetRegistration, type Registration } from "../../../src/registration/index.js";
import {
  DOUBLE_PUPPET_SOURCE_KEY,
  DoublePuppetError,
  DoublePuppets,
  isDoublePuppetEcho,
  type DoublePuppetsOptions,
} from "../../../src/users/double-puppet.js";
import { AS_TOKEN, BOT, DOMAIN, fixture, type Fixture } from "../client/helpers.js";

const ALICE = `@alice:${DOMAIN}`;
const BOB = `@bob:${DOMAIN}`;
const ALICE_TOKEN = "syt_alice_secret_token_000";
const BOB_TOKEN = "syt_bob_secret_token_111";

interface Setup {
  f: Fixture;
  dp: Registration;
  puppets: DoublePuppets;
  /** A room Alice and Bob are in. */
  roomId: string;
  logs: string[];
}

/**
 * A fake homeserver that knows the double-puppet registration and Alice's and Bob's own
 * tokens; Alice and Bob are joined to a room. `loaded: false`: the homeserver does not have
 * the registration.
 */
async function setup(
  opts: Partial<DoublePuppetsOptions> & { loaded?: boolean; withRegistration?: boolean } = {},
): Promise<Setup> {
  const f = await fixture();
  const dp = generateDoublePuppetRegistration({ domain: DOMAIN });
  if (opts.loaded !== false) f.hs.addAppservice(dp.as_token, /^@.*:example\.org$/, dp.sender_localpart);
  f.hs.addAccessToken(ALICE_TOKEN, ALICE);
  f.hs.addAccessToken(BOB_TOKEN, BOB);
  const roomId = f.hs.createRoomDirect(ALICE);
  const room = f.hs.rooms.get(roomId)!;
  room.members.set(BOB, "join");
  room.members.set(BOT, "join");
  const logs: string[] = [];
  const logger = createLogger(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const { loaded: _loaded, withRegistration, ...rest } = opts;
  const puppets = new DoublePuppets({
    client: f.client,
    ...(withRegistration === false ? {} : { registration: dp }),
    marker: "testbridge",
    logger,
    ...rest,
  });
  return { f, dp, puppets, roomId, logs };
}

async function withSetup(
  opts: Parameters<typeof setup>[0],
  body: (s: Setup) => Promise<void>,
): Promise<void> {
  const s = await setup(opts);
  try {
    await body(s);
  } finally {
    await s.f.close();
  }
}

const whoamis = (s: Setup) => s.f.hs.requestsTo("GET", "/account/whoami");

describe("DoublePuppets: the appservice method", () => {
  it("checks with whoami as the user with the second as_token, then sends as the user, marked", async () => {
    await withSetup({}, async (s) => {
      const puppet = await s.puppets.appservice(ALICE);
      assert.equal(puppet.method, "appservice");
      const [check] = whoamis(s);
      assert.equal(check!.headers.authorization, `Bearer ${s.dp.as_token}`);
      assert.equal(check!.query.get("user_id"), ALICE);

      const eventId = await puppet.sendText(s.roomId, "from my phone", { ts: 1_600_000_000_000 });
      const reaction = await puppet.sendReaction(s.roomId, eventId, "👍");
      await puppet.redact(s.roomId, reaction, { reason: "oops" });
      await puppet.sendReadReceipt(s.roomId, eventId);
      const timeline = s.f.hs.rooms.get(s.roomId)!.timeline;
      const [message, react, redaction] = timeline.slice(-3);
      assert.equal(message!.sender, ALICE);
      assert.equal(message!.origin_server_ts, 1_600_000_000_000, "ts works with an application service");
      assert.deepEqual(message!.content, {
        msgtype: "m.text",
        body: "from my phone",
        [DOUBLE_PUPPET_SOURCE_KEY]: "testbridge",
      });
      assert.ok(isDoublePuppetEcho(message!.content, "testbridge"));
      assert.ok(!isDoublePuppetEcho(message!.content, "otherbridge"));
      assert.deepEqual(react!.content["m.relates_to"], {
        rel_type: "m.annotation",
        event_id: eventId,
        key: "👍",
      });
      assert.equal(react!.sender, ALICE);
      assert.equal(redaction!.type, "m.room.redaction");
      assert.equal(redaction!.content.reason, "oops");
      assert.equal(redaction!.content[DOUBLE_PUPPET_SOURCE_KEY], "testbridge");
      const receipt = s.f.hs.requestsTo("POST", "/receipt/m.read/").at(-1)!;
      assert.equal(receipt.userId, ALICE);
      assert.deepEqual(receipt.json, { [DOUBLE_PUPPET_SOURCE_KEY]: "testbridge" });

      for (const r of s.f.hs.requests.filter((r) => r.userId === ALICE)) {
        assert.equal(
          r.headers.authorization,
          `Bearer ${s.dp.as_token}`,
          "the main as_token never acts as Alice",
        );
        assert.equal(r.query.get("user_id"), ALICE);
      }
    });
  });

  it("checks once: later and concurrent requests share one whoami until the LRU drops the user", async () => {
    await withSetup({ cacheSize: 2 }, async (s) => {
      const [a, b] = await Promise.all([s.puppets.appservice(ALICE), s.puppets.appservice(ALICE)]);
      assert.equal(a, b);
      assert.equal(await s.puppets.appservice(ALICE), a);
      assert.equal(whoamis(s).length, 1);
      await s.puppets.appservice(BOB);
      await s.puppets.withToken(BOB, BOB_TOKEN);
      assert.equal(s.puppets.size, 2, "bounded");
      assert.notEqual(await s.puppets.appservice(ALICE), a, "Alice was dropped and is checked again");
      assert.equal(whoamis(s).length, 4);
      s.puppets.forget(ALICE);
      await s.puppets.appservice(ALICE);
      assert.equal(whoamis(s).length, 5, "forget drops the puppet");
    });
  });

  it("refuses, before any request, users it must not act as, and says why", async () => {
    await withSetup({}, async (s) => {
      const cases: Array<[string, string, RegExp]> = [
        [`@ghost_alice:${DOMAIN}`, "not_allowed", /is one of the bridge's own users/],
        [BOT, "not_allowed", /is one of the bridge's own users/],
        ["@alice:other.org", "not_allowed", /is not a user of example\.org/],
        ["alice", "not_allowed", /it is not a Matrix user id/],
      ];
      for (const [userId, failure, message] of cases) {
        for (const attempt of [
          () => s.puppets.appservice(userId),
          () => s.puppets.withToken(userId, ALICE_TOKEN),
        ]) {
          await assert.rejects(attempt(), (err: unknown) => {
            assert.ok(err instanceof DoublePuppetError);
            assert.equal(err.failure, failure);
            assert.match(err.message, new RegExp(`^double puppeting for .* failed: `));
            assert.match(err.message, message);
            return true;
          });
        }
        assert.equal(s.puppets.covers(userId), false, userId);
      }
      await assert.rejects(s.puppets.withToken(ALICE, " "), /failed: the token is empty/);
      assert.equal(s.f.hs.requests.length, 0);
    });
  });

  it("without a registration, or for a user outside its namespace, the method is unavailable", async () => {
    await withSetup({ withRegistration: false }, async (s) => {
      assert.equal(s.puppets.covers(ALICE), false);
      await assert.rejects(s.puppets.appservice(ALICE), /no double-puppet registration is configured/);
      await assert.rejects(
        s.puppets.puppet(ALICE),
        /no double-puppet registration is configured and the user gave no token/,
      );
      const byToken = await s.puppets.puppet(ALICE, ALICE_TOKEN);
      assert.equal(byToken.method, "token");
    });
    const f = await fixture();
    try {
      const narrow = generateDoublePuppetRegistration({ domain: DOMAIN });
      narrow.namespaces.users.push({ regex: "@.*", exclusive: false });
      const puppets = new DoublePuppets({ client: f.client, registration: narrow });
      assert.equal(puppets.covers(ALICE), true);
    } finally {
      await f.close();
    }
  });

  it("refuses an unfit registration: a url, an exclusive namespace, one that misses users", async () => {
    const f = await fixture();
    try {
      const reg = generateDoublePuppetRegistration({ domain: DOMAIN });
      reg.url = "http://127.0.0.1:1";
      reg.namespaces.users = [{ regex: "@alice:example\\.org", exclusive: true }];
      assert.throws(
        () => new DoublePuppets({ client: f.client, registration: reg }),
        (err: unknown) =>
          err instanceof ValidationError &&
          err.problems.map((p) => p.path).join(" ") === "url namespaces.users[0].exclusive namespaces.users",
      );
    } finally {
      await f.close();
    }
  });

  it("a registration the homeserver does not have, or a user it does not know, fails clearly and is not cached", async () => {
    await withSetup({ loaded: false }, async (s) => {
      await assert.rejects(s.puppets.appservice(ALICE), (err: unknown) => {
        assert.ok(err instanceof DoublePuppetError);
        assert.equal(err.failure, "refused");
        assert.match(
          err.message,
          /^double puppeting for @alice:example\.org failed: the homeserver refused the double-puppet registration: 403 M_UNKNOWN_TOKEN/,
        );
        return true;
      });
      assert.equal(s.puppets.size, 0);
    });
    await withSetup({}, async (s) => {
      await assert.rejects(
        s.puppets.appservice(`@carol:${DOMAIN}`),
        /failed: the homeserver refused the double-puppet registration: 403 M_FORBIDDEN: Application service has not registered this user/,
      );
    });
  });
});

describe("DoublePuppets: a token the user handed over", () => {
  it("checks it with whoami (no ?user_id=), then sends with it, without ts", async () => {
    await withSetup({}, async (s) => {
      const puppet = await s.puppets.withToken(ALICE, ALICE_TOKEN);
      assert.equal(puppet.method, "token");
      await puppet.sendText(s.roomId, "hi", { ts: 1_600_000_000_000 });
      const mine = s.f.hs.requests.filter((r) => r.headers.authorization === `Bearer ${ALICE_TOKEN}`);
      assert.deepEqual(
        mine.map((r) => r.path.split("/").slice(4, 6).join("/")),
        ["account/whoami", `rooms/${s.roomId}`],
      );
      for (const r of mine) {
        assert.equal(r.query.get("user_id"), null);
        assert.equal(r.query.get("ts"), null, "a user's token cannot set origin_server_ts");
      }
      const message = s.f.hs.rooms.get(s.roomId)!.timeline.at(-1)!;
      assert.equal(message.sender, ALICE);
      assert.equal(message.content[DOUBLE_PUPPET_SOURCE_KEY], "testbridge");
      assert.ok(
        !s.f.hs.requests.some((r) => r.userId === ALICE && r.headers.authorization === `Bearer ${AS_TOKEN}`),
      );
    });
  });

  it("someone else's token: the clear error, nothing cached", async () => {
    await withSetup({}, async (s) => {
      await assert.rejects(s.puppets.withToken(ALICE, BOB_TOKEN), (err: unknown) => {
        assert.ok(err instanceof DoublePuppetError);
        assert.equal(
          err.message,
          "double puppeting for @alice:example.org failed: the token belongs to @bob:example.org",
        );
        assert.equal(err.failure, "wrong_user");
        assert.equal(err.userId, ALICE);
        return true;
      });
      assert.equal(s.puppets.size, 0);
      await assert.rejects(s.puppets.withToken(ALICE, BOB_TOKEN), /belongs to @bob/);
      assert.equal(whoamis(s).length, 2, "a failed check is not cached");
    });
  });

  it("an unknown token is refused; a new token for the same user is checked anew", async () => {
    await withSetup({}, async (s) => {
      await assert.rejects(
        s.puppets.withToken(ALICE, "syt_not_a_token"),
        /failed: the homeserver refused the token: 403 M_UNKNOWN_TOKEN: Unrecognised access token/,
      );
      const first = await s.puppets.withToken(ALICE, ALICE_TOKEN);
      assert.equal(await s.puppets.withToken(ALICE, ALICE_TOKEN), first);
      s.f.hs.addAccessToken("syt_alice_second_token", ALICE);
      const second = await s.puppets.withToken(ALICE, "syt_alice_second_token");
      assert.notEqual(second, first);
      assert.equal(whoamis(s).length, 3);
    });
  });

  it("M_UNKNOWN_TOKEN later invalidates the puppet: that call and later ones fail, the next request checks again", async () => {
    await withSetup({}, async (s) => {
      const puppet = await s.puppets.withToken(ALICE, ALICE_TOKEN);
      await puppet.sendText(s.roomId, "before logout");
      s.f.hs.revokeAccessToken(ALICE_TOKEN);
      await assert.rejects(puppet.sendText(s.roomId, "after logout"), (err: unknown) => {
        assert.ok(err instanceof DoublePuppetError);
        assert.equal(err.failure, "invalidated");
        assert.match(
          err.message,
          /^double puppeting for @alice:example\.org failed: the homeserver no longer accepts the token \(M_UNKNOWN_TOKEN\)$/,
        );
        return true;
      });
      assert.equal(puppet.valid, false);
      assert.equal(s.puppets.size, 0);
      const before = s.f.hs.requests.length;
      await assert.rejects(puppet.sendReadReceipt(s.roomId, "$x"), /no longer accepts the token/);
      assert.equal(s.f.hs.requests.length, before, "an invalid puppet makes no request");
      await assert.rejects(s.puppets.withToken(ALICE, ALICE_TOKEN), /refused the token: 403 M_UNKNOWN_TOKEN/);
    });
  });

  it("other homeserver errors are thrown as they are and keep the puppet", async () => {
    await withSetup({}, async (s) => {
      const puppet = await s.puppets.withToken(ALICE, ALICE_TOKEN);
      const elsewhere = s.f.hs.createRoomDirect(BOB, "invite");
      await assert.rejects(puppet.sendText(elsewhere, "x"), /403 M_FORBIDDEN/);
      assert.equal(puppet.valid, true);
      assert.equal(await s.puppets.withToken(ALICE, ALICE_TOKEN), puppet);
    });
  });
});

describe("DoublePuppets: with the bridge client", () => {
  it("puppet() prefers the appservice method, else the token", async () => {
    await withSetup({}, async (s) => {
      assert.equal((await s.puppets.puppet(ALICE, ALICE_TOKEN)).method, "appservice");
      assert.ok(s.puppets.covers(ALICE));
    });
  });

  it("a puppet's send keeps its place in the room after the bridge's own send", async () => {
    await withSetup({}, async (s) => {
      const puppet = await s.puppets.appservice(ALICE);
      s.f.hs.script({ method: "PUT", path: /\/send\//, userId: BOT }, { status: 500, delayMs: 30 });
      const bot = s.f.client.sendEvent(BOT, s.roomId, "m.room.message", { body: "first" });
      const alice = puppet.sendText(s.roomId, "second");
      await Promise.all([bot, alice]);
      const bodies = s.f.hs.rooms
        .get(s.roomId)!
        .timeline.slice(-2)
        .map((e) => e.content.body);
      assert.deepEqual(bodies, ["first", "second"]);
    });
  });

  it("the client's puppet endpoints act only as whom their credential covers, refusing others before any request", async () => {
    await withSetup({}, async (s) => {
      const byToken = s.f.client.asUserToken(ALICE, ALICE_TOKEN);
      await assert.rejects(byToken.sendEvent(BOB, s.roomId, "m.room.message", {}), UserNotInNamespaceError);
      assert.throws(
        () => s.f.client.asUserToken("@alice:other.org", ALICE_TOKEN),
        /not a user of example\.org/,
      );
      assert.throws(() => s.f.client.asUserToken(ALICE, ""), /the access token is empty/);
      const byRegistration = s.f.client.asRegistration(s.dp);
      await assert.rejects(byRegistration.whoami("@alice:other.org"), UserNotInNamespaceError);
      await assert.rejects(
        s.f.client.whoami(ALICE),
        UserNotInNamespaceError,
        "the main client still refuses Alice",
      );
      assert.equal(s.f.hs.requests.length, 0);
    });
  });

  it("never shows a token: not in logs, errors or an inspected puppet", async () => {
    await withSetup({}, async (s) => {
      const puppets = [await s.puppets.withToken(ALICE, ALICE_TOKEN), await s.puppets.appservice(BOB)];
      const errors: unknown[] = [];
      await s.puppets.withToken(ALICE, BOB_TOKEN).catch((e: unknown) => errors.push(e));
      await s.puppets.withToken(BOB, "syt_wrong").catch((e: unknown) => errors.push(e));
      s.f.hs.revokeAccessToken(ALICE_TOKEN);
      await puppets[0]!.sendText(s.roomId, "x").catch((e: unknown) => errors.push(e));
      assert.equal(errors.length, 3);
      const shown = [
        ...s.logs,
        ...errors.map((e) => inspect(e, { depth: 8 })),
        ...puppets.map((p) => inspect(p, { depth: 12 })),
        inspect(s.puppets, { depth: 12 }),
        inspect(s.f.client, { depth: 12 }),
      ].join("\n");
      assert.ok(s.logs.length > 0);
      for (const secret of [ALICE_TOKEN, BOB_TOKEN, "syt_wrong", s.dp.as_token, s.dp.hs_token, AS_TOKEN]) {
        assert.ok(!shown.includes(secret), `${secret.slice(0, 8)}… is not shown`);
      }
    });
  });
});
