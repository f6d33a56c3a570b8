import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { openStore, type Store } from "../../src/store/index.js";
import {
  auth,
  deferred,
  errcode,
  event,
  makeApp,
  RecordingHandlers,
  tempDir,
  waitFor,
} from "../support/appservice/harness.js";

const put = (app: Parameters<typeof request>[0], txnId: string, body: unknown, path = "/_matrix/app/v1") =>
  request(app)
    .put(`${path}/transactions/${txnId}`)
    .set(auth)
    .send(body as object);

describe("PUT /transactions", () => {
  it("delivers events in order and answers 200 {}", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const events = [
      event("!a:example.org", 1),
      event("!a:example.org", 2, { type: "m.room.name", state_key: "" }),
    ];
    const res = await put(as.app.callback(), "1", { events });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    assert.match(res.headers["content-type"] ?? "", /application\/json/);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org", "$ev2:example.org"]);
    await close();
  });

  it("a replayed txnId is a no-op, even with a different body", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    assert.equal((await put(cb, "7", { events: [event("!a:example.org", 1)] })).status, 200);
    const replay = await put(cb, "7", { events: [event("!a:example.org", 1), event("!a:example.org", 99)] });
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.body, {});
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
  });

  it("a replay after a restart (new app, same sqlite store) is a no-op", async () => {
    const dir = tempDir();
    try {
      const url = `sqlite://${dir.path}/journal.db`;
      const h1 = new RecordingHandlers();
      const first = await makeApp(h1, { storeUrl: url });
      assert.equal(
        (await put(first.as.app.callback(), "42", { events: [event("!r:example.org", 1)] })).status,
        200,
      );
      await first.close();

      const h2 = new RecordingHandlers();
      const second = await makeApp(h2, { storeUrl: url });
      const res = await put(second.as.app.callback(), "42", { events: [event("!r:example.org", 1)] });
      assert.equal(res.status, 200);
      assert.deepEqual(h2.events, [], "nothing is delivered again after the restart");
      // A new txnId with an already-handled event id does not deliver it again either.
      const res2 = await put(second.as.app.callback(), "43", {
        events: [event("!r:example.org", 1), event("!r:example.org", 2)],
      });
      assert.equal(res2.status, 200);
      assert.deepEqual(h2.eventIds(), ["$ev2:example.org"]);
      await second.close();
    } finally {
      dir.remove();
    }
  });

  it("legacy root path and v1 path share one dedupe", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    assert.equal((await put(cb, "5", { events: [event("!a:example.org", 1)] }, "")).status, 200);
    assert.equal((await put(cb, "5", { events: [event("!a:example.org", 2)] })).status, 200);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
  });

  it("two concurrent PUTs of one txnId run the events once and both get 200", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    const started = deferred();
    let calls = 0;
    h.eventHook = async () => {
      calls++;
      started.resolve();
      await gate.promise;
    };
    const { as, close, log } = await makeApp(h);
    const cb = as.app.callback();
    const body = { events: [event("!a:example.org", 1)] };
    const first = put(cb, "c1", body).then((r) => r);
    await started.promise;
    const second = put(cb, "c1", body).then((r) => r);
    await waitFor(() => log.text.includes("joining the attempt in flight"), "the duplicate to join");
    gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(calls, 1);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
  });

  it("more distinct transactions in flight than allowed: 429, not recorded; duplicates still join", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    const started = deferred();
    h.eventHook = async (ev) => {
      if (ev.event_id === "$ev1:example.org") {
        started.resolve();
        await gate.promise;
      }
    };
    const { as, close, log } = await makeApp(h, { maxInFlightTransactions: 1 });
    const cb = as.app.callback();
    const first = put(cb, "busy1", { events: [event("!a:example.org", 1)] }).then((r) => r);
    await started.promise;
    const refused = await put(cb, "busy2", { events: [event("!b:example.org", 2)] });
    assert.equal(refused.status, 429);
    assert.equal(errcode(refused), "M_LIMIT_EXCEEDED");
    const joined = put(cb, "busy1", { events: [event("!a:example.org", 1)] }).then((r) => r);
    await waitFor(() => log.text.includes("joining the attempt in flight"), "the duplicate to join");
    gate.resolve();
    assert.deepEqual(
      (await Promise.all([first, joined])).map((r) => r.status),
      [200, 200],
    );
    assert.equal((await put(cb, "busy2", { events: [event("!b:example.org", 2)] })).status, 200);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org", "$ev2:example.org"]);
    await close();
  });

  it("a duplicate joining a failing transaction gets its failure", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    const started = deferred();
    h.eventHook = async () => {
      started.resolve();
      await gate.promise;
      throw new Error("remote down");
    };
    const { as, close, log } = await makeApp(h);
    const cb = as.app.callback();
    const body = { events: [event("!a:example.org", 1)] };
    const first = put(cb, "f1", body).then((r) => r);
    await started.promise;
    const second = put(cb, "f1", body).then((r) => r);
    await waitFor(() => log.text.includes("joining the attempt in flight"), "the duplicate to join");
    gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.status, 500);
    assert.equal(b.status, 500);
    assert.equal(errcode(a), "M_UNKNOWN");
    await close();
  });

  it("a handler failure on event 7 of 10 gives 5xx; the retry delivers only the unhandled events", async () => {
    const h = new RecordingHandlers();
    let failOn: string | undefined = "$ev7:example.org";
    const attempts: string[] = [];
    h.eventHook = (ev) => {
      attempts.push(ev.event_id);
      if (ev.event_id === failOn) return Promise.reject(new Error("remote refused"));
      return Promise.resolve();
    };
    const { as, close, log } = await makeApp(h);
    const cb = as.app.callback();
    const events = Array.from({ length: 10 }, (_, i) => event("!a:example.org", i + 1));
    const res = await put(cb, "t10", { events });
    assert.ok(res.status >= 500, `expected 5xx, got ${res.status}`);
    assert.equal(errcode(res), "M_UNKNOWN");
    assert.doesNotMatch(JSON.stringify(res.body), /remote refused/);
    assert.match(log.text, /remote refused/, "the handler's error is logged");
    assert.deepEqual(
      h.eventIds(),
      ["1", "2", "3", "4", "5", "6"].map((n) => `$ev${n}:example.org`),
    );

    failOn = undefined;
    attempts.length = 0;
    const retry = await put(cb, "t10", { events }); // Synapse retries with the same txnId
    assert.equal(retry.status, 200);
    assert.deepEqual(
      attempts,
      ["7", "8", "9", "10"].map((n) => `$ev${n}:example.org`),
    );
    assert.equal(h.events.length, 10);
    assert.equal((await put(cb, "t10", { events })).status, 200);
    assert.equal(h.events.length, 10);
    await close();
  });

  it("a failure in one room does not stop other rooms, and its room's later events wait", async () => {
    const h = new RecordingHandlers();
    let fail = true;
    h.eventHook = (ev) =>
      fail && ev.event_id === "$ev1:example.org" ? Promise.reject(new Error("boom")) : Promise.resolve();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const events = [event("!a:example.org", 1), event("!b:example.org", 2), event("!a:example.org", 3)];
    assert.equal((await put(cb, "r1", { events })).status, 500);
    assert.deepEqual(h.eventIds(), ["$ev2:example.org"], "room a stops at its failure; room b is handled");
    fail = false;
    assert.equal((await put(cb, "r1", { events })).status, 200);
    assert.deepEqual(h.eventIds(), ["$ev2:example.org", "$ev1:example.org", "$ev3:example.org"]);
    await close();
  });

  it("txnIds are opaque: path-traversal-looking and unicode ids are distinct keys", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const ids = ["..%2F..", "..%2F..%2Fetc%2Fpasswd", encodeURIComponent("日本語🙂"), "%2E%2E", "a%00b", "1"];
    for (const [i, id] of ids.entries()) {
      const res = await put(cb, id, { events: [event("!a:example.org", `o${i}`)] });
      assert.equal(res.status, 200, `txnId ${id}`);
    }
    assert.equal(h.events.length, ids.length, "each opaque id is its own transaction");
    for (const id of ids)
      assert.equal((await put(cb, id, { events: [event("!a:example.org", "x")] })).status, 200);
    assert.equal(h.events.length, ids.length, "each replay is a no-op");
    // An unescaped slash is not a txnId: the path does not exist.
    const res = await put(cb, "../users/x", { events: [] });
    assert.equal(res.status, 404);
    await close();
  });

  it("delivers state events (any state_key, even '') as events with state_key kept", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const events = [
      event("!a:example.org", 1, {
        type: "m.room.member",
        state_key: "@x:example.org",
        content: { membership: "join" },
      }),
      event("!a:example.org", 2, { type: "com.example.custom", state_key: "" }),
      event("!a:example.org", 3),
    ];
    assert.equal((await put(as.app.callback(), "s1", { events })).status, 200);
    assert.deepEqual(
      h.events.map((e) => e.state_key),
      ["@x:example.org", "", undefined],
    );
    await close();
  });

  it("does not filter events by sender (echo suppression is the bridge core's job)", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const events = [
      event("!a:example.org", 1, { sender: "@test_ghost:example.org" }),
      event("!a:example.org", 2, { sender: "@testbot:example.org" }),
    ];
    assert.equal((await put(as.app.callback(), "e1", { events })).status, 200);
    assert.equal(h.events.length, 2);
    await close();
  });

  it("the same event twice in one body runs once", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const e = event("!a:example.org", 1);
    assert.equal((await put(as.app.callback(), "d1", { events: [e, e] })).status, 200);
    assert.equal(h.events.length, 1);
    await close();
  });

  it("ephemeral data in both spellings is delivered once; device data in every spelling once", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const typing = {
      type: "m.typing",
      room_id: "!a:example.org",
      content: { user_ids: ["@alice:example.org"] },
    };
    const toDevice = {
      type: "m.room_key_request",
      sender: "@alice:example.org",
      to_user_id: "@test_bob:example.org",
      to_device_id: "D",
      content: {},
    };
    const body = {
      events: [],
      ephemeral: [typing],
      "de.sorunome.msc2409.ephemeral": [typing],
      to_device: [toDevice],
      "de.sorunome.msc2409.to_device": [toDevice],
      device_lists: { changed: ["@alice:example.org"], left: [] },
      "org.matrix.msc3202.device_lists": { changed: ["@alice:example.org"], left: [] },
      device_one_time_keys_count: { "@test_bob:example.org": { D: { signed_curve25519: 5 } } },
      "org.matrix.msc3202.device_one_time_keys_count": {
        "@test_bob:example.org": { D: { signed_curve25519: 5 } },
      },
      "org.matrix.msc3202.device_one_time_key_counts": {
        "@test_bob:example.org": { D: { signed_curve25519: 5 } },
      },
      "org.matrix.msc3202.device_unused_fallback_key_types": {
        "@test_bob:example.org": { D: ["signed_curve25519"] },
      },
    };
    assert.equal((await put(cb, "eph1", body)).status, 200);
    assert.deepEqual(h.calls.map((c) => c.handler).sort(), [
      "deviceLists",
      "ephemeral",
      "keyCounts",
      "toDevice",
    ]);
    assert.deepEqual(h.calls.find((c) => c.handler === "ephemeral")!.data, [typing]);
    assert.deepEqual(h.calls.find((c) => c.handler === "toDevice")!.data, [toDevice]);
    assert.deepEqual(h.calls.find((c) => c.handler === "keyCounts")!.data, {
      oneTimeKeysCount: { "@test_bob:example.org": { D: { signed_curve25519: 5 } } },
      unusedFallbackKeyTypes: { "@test_bob:example.org": { D: ["signed_curve25519"] } },
    });
    // The unstable-only spellings are understood too.
    const unstableOnly = {
      events: [],
      "de.sorunome.msc2409.ephemeral": [typing],
      "org.matrix.msc3202.device_one_time_key_counts": {
        "@test_bob:example.org": { D: { signed_curve25519: 1 } },
      },
    };
    assert.equal((await put(cb, "eph2", unstableOnly)).status, 200);
    assert.equal(h.calls.length, 6);
    assert.deepEqual(h.calls[5]!.data, {
      oneTimeKeysCount: { "@test_bob:example.org": { D: { signed_curve25519: 1 } } },
      unusedFallbackKeyTypes: {},
    });
    // A replay delivers nothing.
    assert.equal((await put(cb, "eph1", body)).status, 200);
    assert.equal(h.calls.length, 6);
    await close();
  });

  it("ephemeral data is not delivered again when a retry repeats it after an event failure", async () => {
    const h = new RecordingHandlers();
    let fail = true;
    h.eventHook = () => (fail ? Promise.reject(new Error("x")) : Promise.resolve());
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const body = {
      events: [event("!a:example.org", 1)],
      ephemeral: [{ type: "m.typing", room_id: "!a:example.org", content: {} }],
    };
    assert.equal((await put(cb, "ep", body)).status, 500);
    fail = false;
    assert.equal((await put(cb, "ep", body)).status, 200);
    assert.equal(h.calls.filter((c) => c.handler === "ephemeral").length, 1);
    assert.equal(h.events.length, 1);
    await close();
  });

  it("events of one room are delivered in order while rooms run in parallel", async () => {
    const h = new RecordingHandlers();
    let active = 0;
    let maxActive = 0;
    const activeRooms = new Set<string>();
    h.eventHook = async (ev) => {
      assert.ok(!activeRooms.has(ev.room_id), `two events of ${ev.room_id} ran at once`);
      activeRooms.add(ev.room_id);
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4)));
      active--;
      activeRooms.delete(ev.room_id);
    };
    const { as, close } = await makeApp(h, { concurrency: 4 });
    const rooms = [
      "!a:example.org",
      "!b:example.org",
      "!c:example.org",
      "!d:example.org",
      "!e:example.org",
      "!f:example.org",
    ];
    const events = Array.from({ length: 60 }, (_, i) => event(rooms[i % rooms.length]!, i));
    assert.equal((await put(as.app.callback(), "ord", { events })).status, 200);
    for (const room of rooms) {
      const got = h.events.filter((e) => e.room_id === room).map((e) => e.event_id);
      const sent = events.filter((e) => e.room_id === room).map((e) => e.event_id);
      assert.deepEqual(got, sent, `order in ${room}`);
    }
    assert.ok(maxActive > 1, "rooms ran in parallel");
    assert.ok(maxActive <= 4, `concurrency bound held (saw ${maxActive})`);
    await close();
  });

  it("per-room order holds across consecutive transactions sent without waiting", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    const started = deferred();
    h.eventHook = async (ev) => {
      if (ev.event_id === "$ev1:example.org") {
        started.resolve();
        await gate.promise;
      }
    };
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const a = put(cb, "o1", { events: [event("!a:example.org", 1)] }).then((r) => r);
    await started.promise;
    const b = put(cb, "o2", { events: [event("!a:example.org", 2), event("!b:example.org", 3)] }).then(
      (r) => r,
    );
    // Room b is free: its event goes through while room a's first event is still running.
    await waitFor(() => h.eventIds().includes("$ev3:example.org"), "the other room's event");
    assert.deepEqual(h.eventIds(), ["$ev3:example.org"], "event 2 waits behind event 1 of its room");
    gate.resolve();
    assert.deepEqual(
      (await Promise.all([a, b])).map((r) => r.status),
      [200, 200],
    );
    assert.deepEqual(h.eventIds(), ["$ev3:example.org", "$ev1:example.org", "$ev2:example.org"]);
    await close();
  });

  it("a hanging handler times out as a failure; its late success cannot mark the retry wrong", async () => {
    const h = new RecordingHandlers();
    const release = deferred();
    let hang = true;
    let aborted = false;
    const runs: string[] = [];
    h.eventHook = async (ev, signal) => {
      runs.push(ev.event_id);
      if (hang && ev.event_id === "$ev1:example.org") {
        signal.addEventListener("abort", () => (aborted = true));
        hang = false;
        await release.promise; // ignores the signal, finishes late
      }
    };
    const { as, close, log } = await makeApp(h, { handlerTimeoutMs: 100 });
    const cb = as.app.callback();
    const events = [event("!a:example.org", 1), event("!a:example.org", 2), event("!b:example.org", 3)];
    const res = await put(cb, "hang", { events });
    assert.equal(res.status, 500);
    assert.ok(aborted, "the handler's signal was aborted at the timeout");
    assert.deepEqual(runs, ["$ev1:example.org", "$ev3:example.org"], "room a waited; room b went on");
    assert.match(log.text, /did not settle within 100 ms/);

    // The retry runs event 1 again (it has not finished) and then event 2.
    const retry = await put(cb, "hang", { events });
    assert.equal(retry.status, 200);
    assert.deepEqual(runs, ["$ev1:example.org", "$ev3:example.org", "$ev1:example.org", "$ev2:example.org"]);

    // The first call finishes late: the committed transaction stays committed and answered 200.
    release.resolve();
    await waitFor(() => log.text.includes("succeeded after its timeout"), "the late success");
    const again = await put(cb, "hang", { events });
    assert.equal(again.status, 200);
    assert.equal(runs.length, 4);
    await close();
  });

  it("a late failure after a timeout does not record the event; the retry delivers it", async () => {
    const h = new RecordingHandlers();
    const release = deferred();
    let first = true;
    let delivered = 0;
    h.eventHook = async () => {
      if (first) {
        first = false;
        await release.promise;
        throw new Error("late failure");
      }
      delivered++;
    };
    const { as, close, log } = await makeApp(h, { handlerTimeoutMs: 50 });
    const cb = as.app.callback();
    const body = { events: [event("!a:example.org", 1)] };
    assert.equal((await put(cb, "lf", body)).status, 500);
    release.resolve();
    await waitFor(() => log.text.includes("failed after its timeout"), "the late failure");
    assert.equal((await put(cb, "lf", body)).status, 200);
    assert.equal(delivered, 1);
    await close();
  });

  it("a store that cannot write fails the transaction (5xx) instead of acknowledging it", async () => {
    const h = new RecordingHandlers();
    const real = await openStore("memory://");
    let broken = true;
    const store: Store = {
      description: "flaky",
      backend: real.backend,
      prefix: real.prefix,
      close: () => real.close(),
      namespace<V>(name: string) {
        const kv = real.namespace<V>(name);
        return {
          ...kv,
          set: (k: string, v: V, ttl?: number) =>
            broken ? Promise.reject(new Error("disk full")) : kv.set(k, v, ttl),
          setMany: (entries: ReadonlyArray<readonly [string, V]>) =>
            broken ? Promise.reject(new Error("disk full")) : kv.setMany(entries),
        };
      },
    };
    const { as, close } = await makeApp(h, { store });
    const cb = as.app.callback();
    const body = { events: [event("!a:example.org", 1)] };
    const res = await put(cb, "st", body);
    assert.equal(res.status, 500);
    assert.doesNotMatch(JSON.stringify(res.body), /disk full/);
    broken = false;
    assert.equal((await put(cb, "st", body)).status, 200);
    await close();
    await real.close();
  });
});
