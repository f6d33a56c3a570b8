import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HomeserverClient,
  HomeserverUnreachableError,
  MatrixError,
  ResponseTooLargeError,
  type RequestInfo,
  type ResponseInfo,
} from "../../../src/client/index.js";
import { endpointOf } from "../../../src/client/endpoints.js";
import { openStore } from "../../../src/store/index.js";
import { AS_TOKEN, BOT, DOMAIN, fixture, registration } from "./helpers.js";

const GHOST = `@ghost_alice:${DOMAIN}`;

describe("HomeserverClient: authentication and identity", () => {
  it("sends the as_token as a Bearer header, never in the query, and asserts ghosts with ?user_id=", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      f.hs.registered.add(GHOST);
      f.hs.rooms.get(roomId)!.members.set(GHOST, "join");
      await f.client.sendEvent(GHOST, roomId, "m.room.message", { body: "hi" });
      await f.client.sendEvent(BOT, roomId, "m.room.message", { body: "bot" });
      const [ghostSend, botSend] = f.hs.requestsTo("PUT", "/send/");
      assert.equal(ghostSend!.headers.authorization, `Bearer ${AS_TOKEN}`);
      assert.equal(ghostSend!.query.get("user_id"), GHOST);
      assert.equal(botSend!.query.get("user_id"), null, "the bot is the as_token's own user");
      for (const r of f.hs.requests) {
        assert.equal(r.query.get("access_token"), null);
        assert.ok(!r.rawPath.includes(AS_TOKEN) && ![...r.query.values()].some((v) => v.includes(AS_TOKEN)));
      }
      assert.equal(f.hs.rooms.get(roomId)!.timeline.at(-2)!.sender, GHOST);
    } finally {
      await f.close();
    }
  });

  it("passes ts as an integer query parameter on send and state, and rejects a non-integer locally", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      await f.client.sendEvent(BOT, roomId, "m.room.message", { body: "x" }, { ts: 1_600_000_000_123 });
      await f.client.sendState(BOT, roomId, "m.room.topic", "", { topic: "t" }, { ts: 1_600_000_000_456 });
      const timeline = f.hs.rooms.get(roomId)!.timeline;
      assert.equal(timeline.at(-2)!.origin_server_ts, 1_600_000_000_123);
      assert.equal(timeline.at(-1)!.origin_server_ts, 1_600_000_000_456);
      const before = f.hs.requests.length;
      for (const ts of [1.5, -1, Number.NaN, "123" as unknown as number]) {
        await assert.rejects(
          f.client.sendEvent(BOT, roomId, "m.room.message", {}, { ts }),
          /ts must be a non-negative integer/,
        );
        await assert.rejects(f.client.sendState(BOT, roomId, "m.room.topic", "", {}, { ts }), /ts must be/);
      }
      assert.equal(f.hs.requests.length, before, "no request was made for a bad ts");
    } finally {
      await f.close();
    }
  });

  it("refuses to act as a user outside the namespace before any request", async () => {
    const f = await fixture();
    try {
      for (const user of [`@alice:${DOMAIN}`, `@ghost_alice:other.org`]) {
        await assert.rejects(f.client.sendEvent(user, "!r:x", "m.room.message", {}), (err: Error) => {
          assert.equal(err.name, "UserNotInNamespaceError");
          assert.match(err.message, new RegExp(`refusing to act as ${user}`));
          return true;
        });
        await assert.rejects(f.client.register(user), /refusing to act as/);
        await assert.rejects(f.client.setDisplayName(user, "x"), /refusing to act as/);
      }
      assert.equal(f.hs.requests.length, 0);
    } finally {
      await f.close();
    }
  });

  it("rejects bad options with errors naming the option", () => {
    const base = { domain: DOMAIN, registration: registration(), store: undefined as never };
    assert.throws(
      () => new HomeserverClient({ ...base, homeserverUrl: "not a url" }),
      /homeserverUrl "not a url"/,
    );
    assert.throws(
      () => new HomeserverClient({ ...base, homeserverUrl: "http://h/?access_token=x" }),
      /no query string or credentials/,
    );
    assert.throws(
      () => new HomeserverClient({ ...base, homeserverUrl: "http://h", retry: { maxAttempts: 0 } }),
      /retry.maxAttempts/,
    );
    assert.throws(
      () => new HomeserverClient({ ...base, homeserverUrl: "http://h", concurrency: 0 }),
      /concurrency/,
    );
  });
});

describe("HomeserverClient: retries", () => {
  it("waits retry_after_ms on 429 M_LIMIT_EXCEEDED, then succeeds with the same txnId", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      f.hs.script(
        { method: "PUT", path: "/send/" },
        {
          status: 429,
          body: { errcode: "M_LIMIT_EXCEEDED", error: "Too Many Requests", retry_after_ms: 60 },
        },
        2,
      );
      const eventId = await f.client.sendEvent(BOT, roomId, "m.room.message", { body: "x" });
      const sends = f.hs.requestsTo("PUT", "/send/");
      assert.equal(sends.length, 3);
      assert.equal(new Set(sends.map((r) => r.path)).size, 1, "every attempt used the same txnId");
      assert.ok(sends[1]!.at - sends[0]!.at >= 50, "waited about retry_after_ms before retrying");
      assert.ok(eventId.startsWith("$"));
      assert.equal(f.hs.rooms.get(roomId)!.timeline.filter((e) => e.type === "m.room.message").length, 1);
    } finally {
      await f.close();
    }
  });

  it("honours a Retry-After header when the body has no retry_after_ms", async () => {
    const f = await fixture();
    try {
      f.hs.script(
        { path: "/versions" },
        { status: 429, body: { errcode: "M_LIMIT_EXCEEDED" }, headers: { "Retry-After": "1" } },
      );
      await f.client.versions();
      const calls = f.hs.requestsTo("GET", "/versions");
      assert.equal(calls.length, 2);
      assert.ok(calls[1]!.at - calls[0]!.at >= 900, "waited the header's one second");
    } finally {
      await f.close();
    }
  });

  it("retries 5xx a bounded number of times, then throws a MatrixError with the last status", async () => {
    const f = await fixture();
    try {
      f.hs.script(
        { path: "/versions" },
        { status: 502, body: { errcode: "M_UNKNOWN", error: "bad gateway" } },
        100,
      );
      await assert.rejects(f.client.versions(), (err: unknown) => {
        assert.ok(err instanceof MatrixError);
        assert.equal(err.status, 502);
        assert.equal(err.errcode, "M_UNKNOWN");
        assert.match(err.message, /^GET \/_matrix\/client\/versions: 502 M_UNKNOWN: bad gateway$/);
        return true;
      });
      assert.equal(f.hs.requestsTo("GET", "/versions").length, 4, "maxAttempts is 4 in the fixture");
    } finally {
      await f.close();
    }
  });

  it("recovers from a 500 followed by success", async () => {
    const f = await fixture();
    try {
      f.hs.script({ path: "/versions" }, { status: 500, body: {} }, 2);
      const v = await f.client.versions();
      assert.deepEqual(v.versions, ["v1.11", "v1.12"]);
      assert.equal(f.hs.requestsTo("GET", "/versions").length, 3);
    } finally {
      await f.close();
    }
  });

  it("fails at once on a 4xx other than 429, with status, errcode and text", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      f.hs.script({ path: "/send/" }, { status: 403, body: { errcode: "M_FORBIDDEN", error: "nope" } }, 10);
      await assert.rejects(f.client.sendEvent(BOT, roomId, "m.room.message", {}), (err: unknown) => {
        assert.ok(err instanceof MatrixError);
        assert.equal(err.status, 403);
        assert.equal(err.errcode, "M_FORBIDDEN");
        assert.equal(err.error, "nope");
        assert.ok(!err.message.includes(AS_TOKEN));
        return true;
      });
      assert.equal(f.hs.requestsTo("PUT", "/send/").length, 1);
    } finally {
      await f.close();
    }
  });

  it("retries connection errors, reusing the txnId, and reports an unreachable homeserver without the token", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      f.hs.script({ path: "/send/" }, { status: 0, destroy: true }, 2);
      await f.client.sendEvent(BOT, roomId, "m.room.message", { body: "x" }, { txnId: "mine-1" });
      const sends = f.hs.requestsTo("PUT", "/send/");
      assert.equal(sends.length, 3);
      assert.ok(
        sends.every((r) => r.path.endsWith("/mine-1")),
        "the caller's txnId is used by every attempt",
      );

      const dead = f.newClient({
        homeserverUrl: "http://127.0.0.1:1",
        retry: { maxAttempts: 2, baseDelayMs: 1 },
      });
      await assert.rejects(dead.versions(), (err: unknown) => {
        assert.ok(err instanceof HomeserverUnreachableError);
        assert.equal(err.attempts, 2);
        assert.match(err.message, /GET \/_matrix\/client\/versions: homeserver unreachable after 2 attempt/);
        return true;
      });
    } finally {
      await f.close();
    }
  });

  it("the onRequest hook sees every attempt, without the token", async () => {
    const seen: RequestInfo[] = [];
    const f = await fixture({ onRequest: (info) => seen.push(info) });
    try {
      f.hs.script({ path: "/versions" }, { status: 503, body: {} });
      await f.client.versions();
      assert.deepEqual(
        seen.map((s) => [s.method, s.path, s.attempt]),
        [
          ["GET", "/_matrix/client/versions", 1],
          ["GET", "/_matrix/client/versions", 2],
        ],
      );
      assert.ok(!JSON.stringify(seen).includes(AS_TOKEN));
    } finally {
      await f.close();
    }
  });
});

describe("HomeserverClient: the onResponse hook and endpoint names", () => {
  it("tells every attempt's endpoint, status (none without an answer) and duration", async () => {
    const seen: ResponseInfo[] = [];
    const f = await fixture({ onResponse: (info) => seen.push(info) });
    try {
      f.hs.script({ path: "/versions" }, { status: 503, body: {} });
      f.hs.script({ path: "/versions" }, { status: 0, destroy: true });
      await f.client.versions();
      assert.deepEqual(
        seen.map((s) => [s.method, s.endpoint, s.status]),
        [
          ["GET", "/versions", 503],
          ["GET", "/versions", undefined],
          ["GET", "/versions", 200],
        ],
      );
      assert.ok(seen.every((s) => s.seconds >= 0 && s.seconds < 10));
    } finally {
      await f.close();
    }
  });

  it("names endpoints with their ids replaced; an unknown path is other", () => {
    const v3 = "/_matrix/client/v3";
    const room = encodeURIComponent("!a/b:example.org");
    const cases: Array<[string, string]> = [
      [`${v3}/rooms/${room}/send/m.room.message/bk.1`, "/rooms/{roomId}/send/{type}/{txnId}"],
      [`${v3}/rooms/${room}/state/m.room.name/`, "/rooms/{roomId}/state/{type}/{stateKey}"],
      [`${v3}/rooms/${room}/state`, "/rooms/{roomId}/state"],
      [`${v3}/rooms/${room}/leave`, "/rooms/{roomId}/leave"],
      [`${v3}/rooms/${room}/receipt/m.read/%24e`, "/rooms/{roomId}/receipt/{receiptType}/{eventId}"],
      [`${v3}/join/${encodeURIComponent("#a:b")}`, "/join/{roomIdOrAlias}"],
      [`${v3}/profile/${encodeURIComponent("@a:b")}/displayname`, "/profile/{userId}/displayname"],
      ["/_matrix/client/v1/appservice/irc/ping", "/appservice/{appserviceId}/ping"],
      ["/_matrix/media/v3/upload", "/_matrix/media/v3/upload"],
      [`${v3}/rooms/${room}/something/else`, "other"],
      ["/_matrix/client/v3/sync", "other"],
    ];
    for (const [path, endpoint] of cases) assert.equal(endpointOf(path), endpoint, path);
  });
});

describe("HomeserverClient: ordering, concurrency, limits", () => {
  it("keeps sends into one room in call order even when early ones are slow or retried", async () => {
    const f = await fixture({ concurrency: 4 });
    try {
      const roomA = f.hs.createRoomDirect(BOT);
      const roomB = f.hs.createRoomDirect(BOT);
      f.hs.script({ path: `${roomA}/send/` }, { status: 200, body: { event_id: "$slow" }, delayMs: 80 });
      f.hs.script({ path: `${roomA}/send/` }, { status: 500, body: {} });
      const sends = [];
      for (let i = 0; i < 12; i++) {
        sends.push(f.client.sendEvent(BOT, i % 2 === 0 ? roomA : roomB, "m.room.message", { body: `m${i}` }));
      }
      await Promise.all(sends);
      const bodies = (roomId: string) =>
        f.hs.rooms
          .get(roomId)!
          .timeline.filter((e) => e.type === "m.room.message")
          .map((e) => e.content.body);
      // the first A send was answered by the script (not stored); the rest are stored in order
      assert.deepEqual(bodies(roomA), ["m2", "m4", "m6", "m8", "m10"]);
      assert.deepEqual(bodies(roomB), ["m1", "m3", "m5", "m7", "m9", "m11"]);
      const aSends = f.hs.requestsTo("PUT", `${roomA}/send/`).map((r) => (r.json as { body: string }).body);
      assert.deepEqual(aSends, ["m0", "m2", "m2", "m4", "m6", "m8", "m10"], "m2 retried before m4 was sent");
      const firstB = f.hs.requestsTo("PUT", `${roomB}/send/`)[0]!;
      assert.ok(
        firstB.at < f.hs.requestsTo("PUT", `${roomA}/send/`)[1]!.at,
        "room B did not wait for room A",
      );
    } finally {
      await f.close();
    }
  });

  it("never has more requests in flight than its concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const counting: typeof fetch = async (input, init) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 5));
        return await fetch(input, init);
      } finally {
        inFlight--;
      }
    };
    const f = await fixture({ concurrency: 3, fetch: counting });
    try {
      await Promise.all(Array.from({ length: 20 }, () => f.client.versions()));
      assert.equal(peak, 3);
    } finally {
      await f.close();
    }
  });

  it("refuses a response larger than maxResponseBytes", async () => {
    const f = await fixture({ maxResponseBytes: 100 });
    try {
      f.hs.script({ path: "/versions" }, { status: 200, body: { versions: ["x".repeat(200)] } });
      await assert.rejects(f.client.versions(), (err: unknown) => err instanceof ResponseTooLargeError);
      assert.equal(f.hs.requestsTo("GET", "/versions").length, 1, "not retried");
    } finally {
      await f.close();
    }
  });
});

describe("HomeserverClient: the calls a bridge needs", () => {
  it("registers (M_USER_IN_USE is success), creates a room with an alias that resolves, and manages aliases", async () => {
    const f = await fixture();
    try {
      assert.deepEqual(await f.client.register(GHOST), { userId: GHOST, created: true });
      assert.deepEqual(await f.client.register(GHOST), { userId: GHOST, created: false });
      const reg = f.hs.requestsTo("POST", "/register")[0]!.json;
      assert.deepEqual(reg, {
        type: "m.login.application_service",
        username: "ghost_alice",
        inhibit_login: true,
      });
      const roomId = await f.client.createRoom(BOT, {
        room_alias_name: "ghost_room",
        name: "Room",
        invite: [GHOST],
        preset: "private_chat",
        is_direct: false,
      });
      assert.deepEqual(await f.client.resolveAlias(`#ghost_room:${DOMAIN}`), { roomId, servers: [DOMAIN] });
      assert.equal(await f.client.resolveAlias(`#ghost_none:${DOMAIN}`), undefined);
      await f.client.createAlias(BOT, `#ghost_two:${DOMAIN}`, roomId);
      assert.equal((await f.client.resolveAlias(`#ghost_two:${DOMAIN}`))?.roomId, roomId);
      await f.client.deleteAlias(BOT, `#ghost_two:${DOMAIN}`);
      assert.equal(await f.client.resolveAlias(`#ghost_two:${DOMAIN}`), undefined);
      assert.equal(await f.client.joinRoom(GHOST, roomId), roomId);
      assert.deepEqual(await f.client.getStateEvent(BOT, roomId, "m.room.name"), { name: "Room" });
      assert.equal(await f.client.getStateEvent(BOT, roomId, "m.room.topic"), undefined);
      const state = await f.client.getState(BOT, roomId);
      assert.ok(state.some((e) => e.type === "m.room.member" && e.state_key === GHOST));
      await f.client.kick(BOT, roomId, GHOST, "bye");
      assert.equal(f.hs.rooms.get(roomId)!.members.get(GHOST), "leave");
      assert.deepEqual(f.hs.requestsTo("POST", "/kick")[0]!.json, { user_id: GHOST, reason: "bye" });
    } finally {
      await f.close();
    }
  });

  it("uploads and downloads media through authenticated media, and makes the small calls", async () => {
    const f = await fixture();
    try {
      const data = new TextEncoder().encode("hello media");
      const mxc = await f.client.uploadMedia(BOT, data, { contentType: "text/plain", filename: "a.txt" });
      assert.match(mxc, /^mxc:\/\/example\.org\//);
      assert.equal(f.hs.requestsTo("POST", "/_matrix/media/v3/upload")[0]!.query.get("filename"), "a.txt");
      const got = await f.client.downloadMedia(mxc);
      assert.equal(new TextDecoder().decode(got.data), "hello media");
      assert.equal(got.contentType, "text/plain");
      assert.ok(f.hs.requests.at(-1)!.path.startsWith("/_matrix/client/v1/media/download/example.org/"));
      await assert.rejects(f.client.downloadMedia("https://x/y"), /not an mxc:\/\/ URI/);

      const roomId = f.hs.createRoomDirect(BOT);
      await f.client.setTyping(BOT, roomId, true, 5000);
      assert.deepEqual(f.hs.requests.at(-1)!.json, { typing: true, timeout: 5000 });
      await f.client.sendReadReceipt(BOT, roomId, "$e1");
      assert.equal(f.hs.requests.at(-1)!.path, `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/$e1`);
      await f.client.setPresence(BOT, "online", "here");
      assert.deepEqual(f.hs.requests.at(-1)!.json, { presence: "online", status_msg: "here" });
      await f.client.setRoomDirectoryVisibility("irc.example.net", roomId, "public");
      assert.equal(f.hs.directory.get(`irc.example.net ${roomId}`), "public");
      assert.deepEqual(await f.client.ping("t1"), { duration_ms: 1 });
      assert.equal(f.hs.requests.at(-1)!.path, "/_matrix/client/v1/appservice/test/ping");
      assert.deepEqual(f.hs.requests.at(-1)!.json, { transaction_id: "t1" });
      assert.deepEqual(await f.client.whoami(), { user_id: BOT });
      const redaction = await f.client.redact(BOT, roomId, "$e1", { reason: "spam" });
      assert.ok(redaction.startsWith("$"));
      assert.match(f.hs.requests.at(-1)!.path, /\/redact\/\$e1\/bk\./);
    } finally {
      await f.close();
    }
  });

  it("encodes ids with reserved characters in paths", async () => {
    const f = await fixture();
    try {
      const weird = `@ghost_a/b?c#d:${DOMAIN}`;
      await f.client.register(weird);
      await f.client.setDisplayName(weird, "W");
      const put = f.hs.requestsTo("PUT", "/displayname")[0]!;
      assert.equal(put.rawPath, `/_matrix/client/v3/profile/${encodeURIComponent(weird)}/displayname`);
      assert.equal(put.query.get("user_id"), weird);
    } finally {
      await f.close();
    }
  });

  it("a closed client fails new calls", async () => {
    const store = await openStore("memory://");
    const client = new HomeserverClient({
      homeserverUrl: "http://127.0.0.1:1",
      domain: DOMAIN,
      registration: registration(),
      store,
    });
    await client.close();
    await assert.rejects(client.versions(), /closed/);
    await store.close();
  });
});
