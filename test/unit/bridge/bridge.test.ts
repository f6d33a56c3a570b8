import { describe, it } from "node:test";
import assert from "node:assert/strict";
import request from "supertest";
import {
  withHarness,
  TestAdapter,
  DOMAIN,
  testConfig,
  testRegistration,
  type Harness,
} from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { Bridge, type BridgeOptions } from "../../../src/bridge/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import { openStore, type Store } from "../../../src/store/index.js";
import type { MatrixMessage, MatrixRedaction, ThirdPartyCapability } from "../../../src/adapter/index.js";
import { PermanentError } from "../../../src/inbox/errors.js";

const messages = (
  hs: {
    rooms: Map<
      string,
      {
        timeline: Array<{
          type: string;
          sender: string;
          content: Record<string, unknown>;
          origin_server_ts: number;
          event_id: string;
        }>;
      }
    >;
  },
  roomId: string,
) => hs.rooms.get(roomId)!.timeline.filter((e) => e.type === "m.room.message");

/** The bot's m.notice messages in a room. */
const notices = (h: Harness, roomId: string) =>
  messages(h.hs, roomId).filter((e) => e.content.msgtype === "m.notice");

/** Waits until every recorded event was handled or dead-lettered. */
const drain = (h: Harness) => h.bridge.appservice.drain();

/** Polls `cond` (a notice is sent after its dead letter is stored, not within drain). */
async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("bridge: Matrix -> remote", () => {
  it("creates a portal through the alias query and routes messages to onMessage", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("lobby");
      assert.equal(portal.alias, `#test_lobby:${DOMAIN}`);
      assert.equal(h.hs.aliases.get(`#test_lobby:${DOMAIN}`), portal.roomId);
      assert.equal(
        await h.push([{ room_id: portal.roomId, content: { msgtype: "m.text", body: "hi" } }]),
        200,
      );
      await drain(h);
      const call = h.adapter.calls.find((c) => c.method === "onMessage");
      assert.ok(call, "onMessage was called");
      const [message, p] = call.args as [MatrixMessage, typeof portal];
      assert.equal(message.body, "hi");
      assert.equal(p.remoteId, "lobby");
    });
  });

  it("answers 404 to an alias the adapter does not know, and makes no room", async () => {
    await withHarness(async (h) => {
      const res = await h.get(`/_matrix/app/v1/rooms/${encodeURIComponent(`#test_missing1:${DOMAIN}`)}`);
      assert.equal(res.status, 404);
      assert.equal(h.hs.requestsTo("POST", /createRoom/).length, 0);
    });
  });

  it("maps the remote id onMessage returned, so a redaction names it", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("ids");
      await h.push([{ event_id: "$m1", room_id: portal.roomId, content: { msgtype: "m.text", body: "x" } }]);
      await h.push([
        { event_id: "$red", type: "m.room.redaction", room_id: portal.roomId, redacts: "$m1", content: {} },
      ]);
      await drain(h);
      const call = h.adapter.calls.find((c) => c.method === "onRedaction");
      assert.ok(call);
      assert.deepEqual((call.args[0] as MatrixRedaction).target, { eventId: "$m1", remoteId: "r1" });
    });
  });

  it("drops echoes of its own bot and ghosts, and ghost memberships", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("echo");
      await h.push([
        {
          room_id: portal.roomId,
          sender: `@test_bob:${DOMAIN}`,
          content: { msgtype: "m.text", body: "ghost" },
        },
        { room_id: portal.roomId, sender: `@bot:${DOMAIN}`, content: { msgtype: "m.text", body: "bot" } },
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: `@test_bob:${DOMAIN}`,
          content: { membership: "leave" },
        },
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: "@alice:example.org",
          content: { membership: "join" },
        },
      ]);
      await drain(h);
      assert.deepEqual(
        h.adapter.calls.filter((c) => c.method !== "queryRoom").map((c) => c.method),
        ["onMembership"],
        "only the Matrix user's own join reaches the adapter",
      );
    });
  });

  it("uses the member event's display name for the sender", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("names");
      await h.push([
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: "@carol:example.org",
          sender: "@carol:example.org",
          content: { membership: "join", displayname: "Carol C" },
        },
        {
          room_id: portal.roomId,
          sender: "@carol:example.org",
          content: { msgtype: "m.text", body: "hello" },
        },
      ]);
      await drain(h);
      const call = h.adapter.calls.find((c) => c.method === "onMessage");
      assert.equal((call?.args[0] as MatrixMessage).sender.displayName, "Carol C");
    });
  });

  it("tells the room once when the adapter cannot carry a kind of event, replying to the event", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("noreact");
      const other = await h.portal("noreact2");
      const reaction = (n: number, roomId = portal.roomId) => ({
        event_id: `$react${n}`,
        type: "m.reaction",
        room_id: roomId,
        sender: "@alice:example.org",
        content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$x", key: "👍" } },
      });
      assert.equal(await h.push([reaction(1), reaction(2)]), 200);
      await drain(h);
      await waitFor("the notice", () => notices(h, portal.roomId).length > 0);
      const [notice] = notices(h, portal.roomId);
      assert.match(String(notice!.content.body), /^not bridged: the test bridge cannot carry reactions/);
      assert.equal(notice!.sender, `@bot:${DOMAIN}`);
      assert.deepEqual(notice!.content["m.relates_to"], { "m.in_reply_to": { event_id: "$react1" } });
      assert.deepEqual(notice!.content["m.mentions"], { user_ids: ["@alice:example.org"] });
      // Both reactions are dead letters ("unsupported"), tried once each (a PermanentError).
      const letters = await h.bridge.appservice.deadLetters.list();
      assert.deepEqual(
        letters.map((l) => [l.id, l.reason, l.attempts]),
        [
          ["$react1", "unsupported", 1],
          ["$react2", "unsupported", 1],
        ],
      );
      // Another room is told too, once; the first room is not told again.
      assert.equal(await h.push([reaction(3, other.roomId), reaction(4)]), 200);
      await drain(h);
      await waitFor("the other room's notice", () => notices(h, other.roomId).length > 0);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(notices(h, other.roomId).length, 1);
      assert.equal(notices(h, portal.roomId).length, 1, "said once per room, not on every reaction");
    });
  });

  it("answers 200 when the adapter throws, retries the event while its room's later events wait, and bridges it once", async () => {
    const adapter = new TestAdapter();
    let failures = 1;
    const original = adapter.onMessage.bind(adapter);
    adapter.onMessage = (m, p) =>
      failures-- > 0
        ? (adapter.calls.push({ method: "failed", args: [m] }), Promise.reject(new Error("remote down")))
        : original(m, p);
    await withHarness(
      async (h) => {
        const portal = await h.portal("retry");
        const events = [
          { event_id: "$once", room_id: portal.roomId, content: { msgtype: "m.text", body: "r" } },
          { event_id: "$after", room_id: portal.roomId, content: { msgtype: "m.text", body: "s" } },
        ];
        assert.equal(await h.push(events, "same-txn"), 200);
        await drain(h);
        const bodies = () =>
          adapter.calls
            .filter((c) => c.method === "onMessage" || c.method === "failed")
            .map((c) => `${c.method} ${(c.args[0] as MatrixMessage).body}`);
        assert.deepEqual(bodies(), ["failed r", "onMessage r", "onMessage s"], "in order, retried in place");
        // The homeserver replaying the transaction changes nothing.
        assert.equal(await h.push(events, "same-txn"), 200);
        await drain(h);
        assert.equal(bodies().length, 3);
        assert.deepEqual(await h.bridge.appservice.deadLetters.list(), []);
        assert.deepEqual(notices(h, portal.roomId), []);
      },
      { adapter },
    );
  });

  it("an event that keeps failing: 200, retried, then dead-lettered with a notice replying to it; other rooms flow", async () => {
    const adapter = new TestAdapter();
    const original = adapter.onMessage.bind(adapter);
    let badTries = 0;
    adapter.onMessage = (m, p) => {
      const body = (m as MatrixMessage).body;
      if (body === "bad") {
        badTries++;
        adapter.calls.push({ method: "failed", args: [m] });
        return Promise.reject(new Error("remote down"));
      }
      if (body === "huge") return Promise.reject(new PermanentError("files over 10 MB cannot be sent"));
      return original(m, p);
    };
    await withHarness(
      async (h) => {
        const a = await h.portal("failing");
        const b = await h.portal("fine");
        const msg = (event_id: string, room_id: string, body: string) => ({
          event_id,
          room_id,
          sender: "@carol:example.org",
          content: { msgtype: "m.text", body },
        });
        assert.equal(
          await h.push([
            msg("$bad", a.roomId, "bad"),
            msg("$b1", b.roomId, "b1"),
            msg("$a2", a.roomId, "a2"),
            msg("$huge", b.roomId, "huge"),
            msg("$b2", b.roomId, "b2"),
          ]),
          200,
        );
        await drain(h);
        const handled = adapter.calls
          .filter((c) => c.method === "onMessage")
          .map((c) => (c.args[0] as MatrixMessage).body);
        assert.deepEqual(
          handled.filter((x) => x.startsWith("b")),
          ["b1", "b2"],
        );
        const lastBadTry = adapter.calls.findLastIndex((c) => c.method === "failed");
        const a2 = adapter.calls.findIndex(
          (c) => c.method === "onMessage" && (c.args[0] as MatrixMessage).body === "a2",
        );
        assert.ok(a2 > lastBadTry, "the failing room's later event waited for its last try");
        assert.equal(badTries, 3, "an unexpected error gets inbox.retry.unexpectedAttempts tries");

        const letters = await h.bridge.appservice.deadLetters.list();
        assert.deepEqual(letters.map((l) => [l.id, l.reason, l.attempts]).sort(), [
          ["$bad", "exhausted", 3],
          ["$huge", "permanent", 1],
        ]);
        await waitFor("both notices", () => notices(h, a.roomId).length + notices(h, b.roomId).length === 2);
        const [toA] = notices(h, a.roomId);
        assert.equal(toA!.content.body, "not bridged: the bridge could not deliver it (3 tries)");
        assert.deepEqual(toA!.content["m.relates_to"], { "m.in_reply_to": { event_id: "$bad" } });
        assert.deepEqual(toA!.content["m.mentions"], { user_ids: ["@carol:example.org"] });
        const [toB] = notices(h, b.roomId);
        assert.equal(toB!.content.body, "not bridged: files over 10 MB cannot be sent");
        assert.deepEqual(toB!.content["m.relates_to"], { "m.in_reply_to": { event_id: "$huge" } });
        assert.doesNotMatch(JSON.stringify([toA, toB]), /remote down|\bat .*\.ts:\d+/, "no internals");
      },
      { adapter },
    );
  });
});

describe("bridge: the homeserver's queries", () => {
  it("registers a ghost with its profile before answering a user query", async () => {
    await withHarness(async (h) => {
      const res = await h.get(`/_matrix/app/v1/users/${encodeURIComponent(`@test_bob:${DOMAIN}`)}`);
      assert.equal(res.status, 200);
      assert.ok(h.hs.registered.has(`@test_bob:${DOMAIN}`));
      assert.equal(h.hs.profiles.get(`@test_bob:${DOMAIN}`)?.displayname, "Remote bob");
      const missing = await h.get(`/_matrix/app/v1/users/${encodeURIComponent(`@test_missing2:${DOMAIN}`)}`);
      assert.equal(missing.status, 404);
      assert.ok(!h.hs.registered.has(`@test_missing2:${DOMAIN}`));
    });
  });

  it("maps third-party URIs through the adapter to ids in the namespaces", async () => {
    await withHarness(async (h) => {
      const user = await h.get(`/_matrix/app/v1/user?uri=${encodeURIComponent("test:Alice")}`);
      assert.equal(user.status, 200);
      assert.deepEqual(user.body, { user_id: `@test__alice:${DOMAIN}` });
      const alias = await h.get(`/_matrix/app/v1/alias?uri=${encodeURIComponent("test:x#chan")}`);
      assert.deepEqual(alias.body, { alias: `#test_chan:${DOMAIN}` });
      const none = await h.get(`/_matrix/app/v1/user?uri=${encodeURIComponent("other:bob")}`);
      assert.equal(none.status, 404);
    });
  });

  describe("third-party reverse lookups", () => {
    const protocol = {
      user_fields: ["nick"],
      location_fields: ["channel"],
      icon: "",
      field_types: {},
      instances: [],
    };
    /** Knows remote user "alice" and remote room "lobby"; says "bob" is on a protocol it never described. */
    class ThirdPartyAdapter extends TestAdapter {
      readonly asked: string[] = [];
      readonly thirdParty: ThirdPartyCapability = {
        protocols: { test: protocol },
        reverseLookupUser: (remoteId: string) => {
          this.asked.push(`user ${remoteId}`);
          if (remoteId === "bob") return Promise.resolve([{ protocol: "nope", fields: { nick: "bob" } }]);
          return Promise.resolve(
            remoteId === "alice" ? [{ protocol: "test", fields: { nick: "alice" } }] : [],
          );
        },
        reverseLookupLocation: (remoteId: string) => {
          this.asked.push(`location ${remoteId}`);
          return Promise.resolve(
            remoteId === "lobby" ? [{ protocol: "test", fields: { channel: "#lobby" } }] : [],
          );
        },
      };
    }
    const user = (h: Harness, userId: string) =>
      h.get(`/_matrix/app/v1/thirdparty/user?userid=${encodeURIComponent(userId)}`);
    const location = (h: Harness, alias: string) =>
      h.get(`/_matrix/app/v1/thirdparty/location?alias=${encodeURIComponent(alias)}`);

    it("answers a ghost's user id with the adapter's protocol and fields, asking with its remote id", async () => {
      const adapter = new ThirdPartyAdapter();
      await withHarness(
        async (h) => {
          const hit = await user(h, `@test_alice:${DOMAIN}`);
          assert.equal(hit.status, 200);
          assert.deepEqual(hit.body, [
            { userid: `@test_alice:${DOMAIN}`, protocol: "test", fields: { nick: "alice" } },
          ]);
          const miss = await user(h, `@test_carol:${DOMAIN}`);
          assert.equal(miss.status, 404);
          const unknownProtocol = await user(h, `@test_bob:${DOMAIN}`);
          assert.equal(unknownProtocol.status, 404, "a match for an undescribed protocol is dropped");
          assert.deepEqual(adapter.asked, ["user alice", "user carol", "user bob"]);
        },
        { adapter },
      );
    });

    it("answers 404 for a user outside the ghost namespace without asking the adapter", async () => {
      const adapter = new ThirdPartyAdapter();
      await withHarness(
        async (h) => {
          for (const outside of [`@alice:${DOMAIN}`, "@test_alice:elsewhere.org", `@bot:${DOMAIN}`]) {
            assert.equal((await user(h, outside)).status, 404, outside);
          }
          assert.deepEqual(adapter.asked, []);
        },
        { adapter },
      );
    });

    it("answers a portal alias with the adapter's protocol and fields; 404 for unknown and foreign aliases", async () => {
      const adapter = new ThirdPartyAdapter();
      await withHarness(
        async (h) => {
          const hit = await location(h, `#test_lobby:${DOMAIN}`);
          assert.equal(hit.status, 200);
          assert.deepEqual(hit.body, [
            { alias: `#test_lobby:${DOMAIN}`, protocol: "test", fields: { channel: "#lobby" } },
          ]);
          assert.equal((await location(h, `#test_attic:${DOMAIN}`)).status, 404);
          assert.equal((await location(h, `#lobby:${DOMAIN}`)).status, 404);
          assert.equal((await location(h, "#test_lobby:elsewhere.org")).status, 404);
          assert.deepEqual(adapter.asked, ["location lobby", "location attic"]);
        },
        { adapter },
      );
    });

    it("answers 404 when the adapter has no reverse lookups", async () => {
      await withHarness(async (h) => {
        assert.equal((await user(h, `@test_alice:${DOMAIN}`)).status, 404);
        assert.equal((await location(h, `#test_lobby:${DOMAIN}`)).status, 404);
      });
    });
  });
});

describe("bridge: readiness", () => {
  /** An adapter whose start waits for `open()`. */
  class GatedAdapter extends TestAdapter {
    startCalled = false;
    private release!: () => void;
    private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
    override async start(ctx: Parameters<TestAdapter["start"]>[0]) {
      this.startCalled = true;
      await this.gate;
      return super.start(ctx);
    }
    open() {
      this.release();
    }
  }

  interface ReadyBody {
    status: string;
    failed?: string[];
    checks: Record<string, { ok: boolean; error?: string }>;
  }

  /** A bridge on a fake homeserver and a memory store, not started; `stop` cleans up. */
  async function makeBridge(
    adapter: TestAdapter,
    readiness?: BridgeOptions["readiness"],
    wrapStore: (store: Store) => Store = (store) => store,
  ) {
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const store = wrapStore(await openStore("memory://"));
    const bridge = new Bridge({
      config: testConfig(hs.url),
      registration,
      adapter,
      store,
      logger: silentLogger(),
      ...(readiness ? { readiness } : {}),
    });
    const get = async (path: string) => {
      const res = await request(bridge.appservice.app.callback()).get(path);
      return { status: res.status, body: res.body as ReadyBody };
    };
    const stop = async () => {
      await bridge.stop();
      await store.close();
      await hs.close();
    };
    return { hs, bridge, get, stop };
  }

  it("/ready is 503 naming the adapter until adapter.start resolved, then 200; /health is 200 throughout", async () => {
    const adapter = new GatedAdapter();
    const { bridge, get, stop } = await makeBridge(adapter);
    try {
      const before = await get("/ready");
      assert.equal(before.status, 503);
      assert.deepEqual(before.body.failed, ["adapter"]);
      assert.equal((await get("/health")).status, 200, "alive before it is ready");
      const starting = bridge.start();
      await waitFor("adapter.start to be called", () => adapter.startCalled);
      const during = await get("/ready");
      assert.equal(during.status, 503);
      assert.equal(during.body.status, "not ready");
      assert.deepEqual(during.body.failed, ["adapter"]);
      assert.deepEqual(during.body.checks.adapter, { ok: false, error: "the adapter has not started" });
      assert.deepEqual(during.body.checks.store, { ok: true });
      assert.deepEqual(during.body.checks.homeserver, { ok: true });
      assert.equal((await get("/health")).status, 200);
      adapter.open();
      await starting;
      const after = await get("/ready");
      assert.equal(after.status, 200);
      assert.equal(after.body.status, "ready");
      assert.deepEqual(Object.keys(after.body.checks).sort(), ["adapter", "homeserver", "store"]);
    } finally {
      await stop();
    }
  });

  it("/ready is 503 naming the homeserver while it is unreachable, checked at most once per interval", async () => {
    const { hs, bridge, get, stop } = await makeBridge(new TestAdapter(), { homeserverIntervalMs: 150 });
    try {
      await bridge.start();
      assert.equal((await get("/ready")).status, 200);
      await new Promise((r) => setTimeout(r, 160));
      hs.script({ method: "GET", path: "/_matrix/client/versions" }, { status: 0, destroy: true }, 100);
      const versionsBefore = hs.requestsTo("GET", "/_matrix/client/versions").length;
      const down = await get("/ready");
      assert.equal(down.status, 503);
      assert.deepEqual(down.body.failed, ["homeserver"]);
      assert.match(down.body.checks.homeserver!.error!, /^the homeserver failed: /);
      assert.equal((await get("/ready")).status, 503, "the failure counts for the interval");
      assert.equal(
        hs.requestsTo("GET", "/_matrix/client/versions").length - versionsBefore,
        1,
        "one request for both probes, no retries",
      );
      hs.clearScripts();
      await new Promise((r) => setTimeout(r, 160));
      const back = await get("/ready");
      assert.equal(back.status, 200, JSON.stringify(back.body));
    } finally {
      await stop();
    }
  });

  it("/ready is 503 naming the store when a read fails", async () => {
    let broken = false;
    const { bridge, get, stop } = await makeBridge(new TestAdapter(), undefined, (store) => ({
      ...store,
      close: () => store.close(),
      namespace: <V>(name: string) => {
        const kv = store.namespace<V>(name);
        return {
          ...kv,
          get: (key: string) => (broken ? Promise.reject(new Error("disk on fire")) : kv.get(key)),
        } as typeof kv;
      },
    }));
    try {
      await bridge.start();
      assert.equal((await get("/ready")).status, 200);
      broken = true;
      const res = await get("/ready");
      assert.equal(res.status, 503);
      assert.deepEqual(res.body.failed, ["store"]);
      assert.deepEqual(res.body.checks.store, { ok: false, error: "the store failed: disk on fire" });
    } finally {
      broken = false;
      await stop();
    }
  });
});

describe("bridge: metrics", () => {
  /** The value of one series in the Prometheus text, or undefined when it is absent. */
  async function series(h: Harness, name: string, labels: string): Promise<number | undefined> {
    const text = await h.bridge.appservice.metrics.metrics();
    const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  const SEND = 'method="PUT",endpoint="/rooms/{roomId}/send/{type}/{txnId}"';

  it("counts homeserver requests by normalised endpoint and status, with latency, never a raw id", async () => {
    await withHarness(async (h) => {
      await h.portal("lobby");
      h.hs.script({ method: "PUT", path: /\/send\// }, { status: 502, body: { errcode: "M_UNKNOWN" } });
      await h.adapter.ctx!.send("lobby", "bob", "one");
      await h.adapter.ctx!.send("lobby", "bob", "two");
      await h.bridge.flush();
      assert.equal(await series(h, "bridgekit_homeserver_requests_total", `${SEND},status="200"`), 2);
      assert.equal(await series(h, "bridgekit_homeserver_requests_total", `${SEND},status="502"`), 1);
      assert.equal(await series(h, "bridgekit_homeserver_request_duration_seconds_count", SEND), 3);
      const sum = (await series(h, "bridgekit_homeserver_request_duration_seconds_sum", SEND))!;
      assert.ok(sum > 0 && sum < 10, `latency sum ${sum}`);
      assert.ok(
        (await series(
          h,
          "bridgekit_homeserver_requests_total",
          'method="POST",endpoint="/createRoom",status="200"',
        ))! >= 1,
      );
      assert.ok(
        (await series(
          h,
          "bridgekit_homeserver_requests_total",
          'method="GET",endpoint="/versions",status="200"',
        ))! >= 1,
      );
      const text = await h.bridge.appservice.metrics.metrics();
      assert.doesNotMatch(
        text,
        /![A-Za-z0-9]+:example\.org|@test_|endpoint="other"/,
        "no raw ids, every path known",
      );
      assert.match(
        text,
        /bridgekit_appservice_transactions_total|bridgekit_inbox_pending_items/,
        "one registry for all",
      );
    });
  });

  it("shows the outbox's depth and oldest item's age while the homeserver refuses, and its dead letters", async () => {
    await withHarness(async (h) => {
      await h.portal("lobby");
      assert.equal(await series(h, "bridgekit_outbox_items", 'queue="actions"'), 0);
      assert.equal(await series(h, "bridgekit_outbox_oldest_item_age_seconds", 'queue="actions"'), 0);
      h.hs.script(
        { method: "PUT", path: /\/send\// },
        { status: 503, body: { errcode: "M_UNKNOWN" } },
        10_000,
      );
      await h.adapter.ctx!.send("lobby", "bob", "one");
      await h.adapter.ctx!.send("lobby", "bob", "two");
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(await series(h, "bridgekit_outbox_items", 'queue="actions"'), 2);
      const age = (await series(h, "bridgekit_outbox_oldest_item_age_seconds", 'queue="actions"'))!;
      assert.ok(age >= 0.05 && age < 10, `oldest item's age ${age}`);
      h.hs.clearScripts();
      await h.bridge.flush();
      assert.equal(await series(h, "bridgekit_outbox_items", 'queue="actions"'), 0);
      assert.equal(await series(h, "bridgekit_outbox_dead_letters_total", 'queue="actions"'), 0);
      h.hs.script({ method: "PUT", path: /\/send\// }, { status: 403, body: { errcode: "M_FORBIDDEN" } });
      await h.adapter.ctx!.send("lobby", "bob", "refused");
      await h.bridge.flush();
      assert.equal(await series(h, "bridgekit_outbox_dead_letters_total", 'queue="actions"'), 1);
      assert.equal(await series(h, "bridgekit_outbox_items", 'queue="actions"'), 0);
    });
  });
});
