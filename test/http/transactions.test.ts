import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import type { AppserviceHandlers } from "../../src/appservice/index.js";
import { PermanentError, RetryableError, type DeadLetter } from "../../src/inbox/index.js";
import { openStore, type KeyValue, type Store } from "../../src/store/index.js";
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

/** Recording handlers that also keep the dead letters they are told about. */
class DeadLetterHandlers extends RecordingHandlers implements AppserviceHandlers {
  readonly letters: DeadLetter[] = [];
  onDeadLetter(letter: DeadLetter): Promise<void> {
    this.letters.push(letter);
    return Promise.resolve();
  }
}

/** A store whose inbox writes can be held back, to catch a transaction while it is recorded. */
class GatedStore implements Store {
  readonly description = "gated";
  readonly prefix: string;
  readonly backend: Store["backend"];
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  waiting = 0;

  constructor(private readonly real: Store) {
    this.prefix = real.prefix;
    this.backend = real.backend;
  }

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.gate = undefined;
    this.open?.();
  }

  namespace<V>(name: string): KeyValue<V> {
    const kv = this.real.namespace<V>(name);
    return {
      ...kv,
      setMany: async (entries) => {
        if (name === "inbox" && this.gate) {
          this.waiting++;
          await this.gate;
        }
        return kv.setMany(entries);
      },
    };
  }

  close(): Promise<void> {
    return this.real.close();
  }
}

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
    await as.drain();
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
    await as.drain();
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
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
  });

  it("answers once the events are recorded, before any handler ran", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    h.eventHook = () => gate.promise;
    const { as, close } = await makeApp(h);
    const res = await put(as.app.callback(), "early", { events: [event("!a:example.org", 1)] });
    assert.equal(res.status, 200);
    assert.deepEqual(h.eventIds(), [], "nothing handled yet: the handler is still waiting");
    gate.resolve();
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
  });

  it("two concurrent PUTs of one txnId record the events once and both get 200", async () => {
    const h = new RecordingHandlers();
    const slow = new GatedStore(await openStore("memory://"));
    const { as, close, log } = await makeApp(h, { store: slow });
    const cb = as.app.callback();
    await as.start();
    slow.hold();
    const body = { events: [event("!a:example.org", 1)] };
    const first = put(cb, "c1", body).then((r) => r);
    await waitFor(() => slow.waiting > 0, "the record to be written");
    const second = put(cb, "c1", body).then((r) => r);
    await waitFor(() => log.text.includes("joining the attempt in flight"), "the duplicate to join");
    slow.release();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    await close();
    await slow.close();
  });

  it("more distinct transactions in flight than allowed: 429, not recorded; duplicates still join", async () => {
    const h = new RecordingHandlers();
    const slow = new GatedStore(await openStore("memory://"));
    const { as, close, log } = await makeApp(h, { store: slow, maxInFlightTransactions: 1 });
    const cb = as.app.callback();
    await as.start();
    slow.hold();
    const first = put(cb, "busy1", { events: [event("!a:example.org", 1)] }).then((r) => r);
    await waitFor(() => slow.waiting > 0, "the record to be written");
    const refused = await put(cb, "busy2", { events: [event("!b:example.org", 2)] });
    assert.equal(refused.status, 429);
    assert.equal(errcode(refused), "M_LIMIT_EXCEEDED");
    const joined = put(cb, "busy1", { events: [event("!a:example.org", 1)] }).then((r) => r);
    await waitFor(() => log.text.includes("joining the attempt in flight"), "the duplicate to join");
    slow.release();
    assert.deepEqual(
      (await Promise.all([first, joined])).map((r) => r.status),
      [200, 200],
    );
    assert.equal((await put(cb, "busy2", { events: [event("!b:example.org", 2)] })).status, 200);
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev1:example.org", "$ev2:example.org"]);
    await close();
    await slow.close();
  });

  it("a handler that always throws: 200, retried, then a dead letter; its room moves on, others never wait", async () => {
    const h = new DeadLetterHandlers();
    const tries: string[] = [];
    h.eventHook = (ev) => {
      tries.push(ev.event_id);
      return ev.event_id === "$ev1:example.org"
        ? Promise.reject(new TypeError("cannot map this"))
        : Promise.resolve();
    };
    const { as, close, log } = await makeApp(h, { retry: { firstDelayMs: 20, unexpectedAttempts: 3 } });
    const cb = as.app.callback();
    const events = [event("!a:example.org", 1), event("!b:example.org", 2), event("!a:example.org", 3)];
    const res = await put(cb, "r1", { events });
    assert.equal(res.status, 200, "a failing handler never becomes a 5xx");
    await waitFor(() => h.eventIds().includes("$ev2:example.org"), "the other room's event");
    assert.ok(!h.eventIds().includes("$ev3:example.org"), "room a's next event waits behind the failing one");
    await as.drain();
    assert.deepEqual(
      tries.filter((id) => id === "$ev1:example.org").length,
      3,
      "tried unexpectedAttempts times",
    );
    assert.deepEqual(h.eventIds(), ["$ev2:example.org", "$ev3:example.org"]);
    assert.equal(h.letters.length, 1);
    const letter = h.letters[0]!;
    assert.equal(letter.id, "$ev1:example.org");
    assert.equal(letter.roomId, "!a:example.org");
    assert.equal(letter.reason, "exhausted");
    assert.equal(letter.attempts, 3);
    assert.deepEqual(letter.error, { name: "TypeError", message: "cannot map this" });
    assert.match(letter.userMessage, /could not deliver it \(3 tries\)/);
    assert.doesNotMatch(
      letter.userMessage,
      /TypeError|at /,
      "no error class or stack in what the sender is told",
    );
    assert.deepEqual(
      (await as.deadLetters.list()).map((l) => l.id),
      ["$ev1:example.org"],
    );
    assert.match(log.text, /will retry/);
    assert.match(log.text, /giving up \(exhausted\)/);
    await close();
  });

  it("a PermanentError is dead-lettered at once with the adapter's message for the user", async () => {
    const h = new DeadLetterHandlers();
    let tries = 0;
    h.eventHook = () => {
      tries++;
      return Promise.reject(new PermanentError("files over 10 MB cannot be sent to IRC"));
    };
    const { as, close } = await makeApp(h);
    assert.equal((await put(as.app.callback(), "p1", { events: [event("!a:example.org", 1)] })).status, 200);
    await as.drain();
    assert.equal(tries, 1);
    assert.equal(h.letters[0]?.reason, "permanent");
    assert.equal(h.letters[0]?.userMessage, "files over 10 MB cannot be sent to IRC");
    await close();
  });

  it("a RetryableError is retried with backoff until it works; retryNow() ends the wait at once", async () => {
    const h = new DeadLetterHandlers();
    let down = true;
    let tries = 0;
    h.eventHook = () => {
      tries++;
      return down ? Promise.reject(new RetryableError("network down")) : Promise.resolve();
    };
    // A first delay of a minute: only retryNow can make this test finish in time.
    const { as, close } = await makeApp(h, { retry: { firstDelayMs: 60_000, maxAttempts: 5 } });
    assert.equal((await put(as.app.callback(), "n1", { events: [event("!a:example.org", 1)] })).status, 200);
    await waitFor(() => tries === 1, "the first try");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(tries, 1, "waits for its backoff");
    down = false;
    as.retryNow();
    await as.drain();
    assert.equal(tries, 2);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org"]);
    assert.equal(h.letters.length, 0);
    await close();
  });

  it("a hanging handler times out (its signal aborts) and is retried; a late success before the retry is not run again", async () => {
    const h = new RecordingHandlers();
    const release = deferred();
    let aborted = false;
    const runs: string[] = [];
    h.eventHook = async (ev, signal) => {
      runs.push(ev.event_id);
      if (ev.event_id === "$ev1:example.org") {
        signal.addEventListener("abort", () => (aborted = true));
        await release.promise; // ignores the signal, finishes late
      }
    };
    const { as, close, log } = await makeApp(h, { handlerTimeoutMs: 50, retry: { firstDelayMs: 60_000 } });
    const events = [event("!a:example.org", 1), event("!a:example.org", 2), event("!b:example.org", 3)];
    assert.equal((await put(as.app.callback(), "hang", { events })).status, 200);
    await waitFor(() => log.text.includes("did not settle within 50 ms"), "the timeout");
    assert.ok(aborted, "the handler's signal was aborted at the timeout");
    assert.deepEqual(runs, ["$ev1:example.org", "$ev3:example.org"], "room a waits; room b went on");
    release.resolve(); // succeeds while room a waits a minute for its retry
    await as.drain();
    assert.match(log.text, /succeeded after its timeout/);
    assert.deepEqual(
      runs,
      ["$ev1:example.org", "$ev3:example.org", "$ev2:example.org"],
      "event 1 was not run again",
    );
    await close();
  });

  it("what was recorded but not handled is handled after a restart, in order; nothing twice", async () => {
    const dir = tempDir();
    try {
      const url = `sqlite://${dir.path}/inbox.db`;
      const h1 = new RecordingHandlers();
      h1.eventHook = (ev, signal) =>
        ev.event_id === "$ev2:example.org"
          ? new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("stopped"))))
          : Promise.resolve();
      const first = await makeApp(h1, { storeUrl: url });
      const events = [1, 2, 3, 4].map((n) => event("!a:example.org", n));
      assert.equal((await put(first.as.app.callback(), "crash", { events })).status, 200);
      await waitFor(() => h1.eventIds().length === 1, "event 1");
      await first.close(); // event 2 is running: its signal aborts; 2, 3 and 4 stay recorded
      assert.deepEqual(h1.eventIds(), ["$ev1:example.org"]);

      const h2 = new RecordingHandlers();
      const second = await makeApp(h2, { storeUrl: url });
      await second.as.start();
      await second.as.drain();
      assert.deepEqual(h2.eventIds(), ["$ev2:example.org", "$ev3:example.org", "$ev4:example.org"]);
      assert.equal((await put(second.as.app.callback(), "crash", { events })).status, 200);
      await second.as.drain();
      assert.equal(h2.events.length, 3, "the replay is a no-op");
      await second.close();
    } finally {
      dir.remove();
    }
  });

  it("dead letters survive a restart; retrying one delivers it once the handler works", async () => {
    const dir = tempDir();
    try {
      const url = `sqlite://${dir.path}/dead.db`;
      const h1 = new DeadLetterHandlers();
      h1.eventHook = () => Promise.reject(new PermanentError("not today"));
      const first = await makeApp(h1, { storeUrl: url });
      assert.equal(
        (await put(first.as.app.callback(), "d1", { events: [event("!a:example.org", 1)] })).status,
        200,
      );
      await first.as.drain();
      await first.close();

      const h2 = new DeadLetterHandlers();
      const second = await makeApp(h2, { storeUrl: url });
      const [letter] = await second.as.deadLetters.list();
      assert.equal(letter?.id, "$ev1:example.org");
      assert.equal(letter?.item.kind, "event");
      assert.equal(await second.as.retryDeadLetter("$nope:example.org"), false);
      assert.equal(await second.as.retryDeadLetter("$ev1:example.org"), true);
      await second.as.drain();
      assert.deepEqual(h2.eventIds(), ["$ev1:example.org"]);
      assert.deepEqual(await second.as.deadLetters.list(), [], "a retried letter that worked is gone");
      await second.close();
    } finally {
      dir.remove();
    }
  });

  it("a full inbox answers 503 so the homeserver keeps the backlog; nothing is dropped", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    h.eventHook = () => gate.promise;
    const { as, close, log } = await makeApp(h, { inbox: { maxPendingItems: 5 } });
    const cb = as.app.callback();
    const batch = (txn: string, from: number) =>
      put(cb, txn, { events: [0, 1, 2].map((i) => event("!a:example.org", from + i)) });
    assert.equal((await batch("f1", 0)).status, 200);
    const full = await batch("f2", 10);
    assert.equal(full.status, 503);
    assert.equal(errcode(full), "M_LIMIT_EXCEEDED");
    assert.equal(full.headers["retry-after"], "5");
    assert.match(log.text, /the inbox is full/);
    const metrics = await as.metrics.metrics();
    assert.match(metrics, /bridgekit_inbox_full_total 1/);
    assert.match(metrics, /bridgekit_inbox_pending_items 3/);
    assert.equal((await batch("f1", 0)).status, 200, "a replay of a recorded transaction is not refused");
    gate.resolve();
    await as.drain();
    assert.equal((await batch("f2", 10)).status, 200, "the homeserver's retry gets in once there is room");
    await as.drain();
    assert.equal(h.events.length, 6);
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
    await as.drain();
    assert.equal(h.events.length, ids.length, "each opaque id is its own transaction");
    for (const id of ids)
      assert.equal((await put(cb, id, { events: [event("!a:example.org", "x")] })).status, 200);
    await as.drain();
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
    await as.drain();
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
    await as.drain();
    assert.equal(h.events.length, 2);
    await close();
  });

  it("the same event twice in one body runs once", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const e = event("!a:example.org", 1);
    assert.equal((await put(as.app.callback(), "d1", { events: [e, e] })).status, 200);
    await as.drain();
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
    await as.drain();
    assert.deepEqual(h.calls.map((c) => c.handler).sort(), [
      "deviceLists",
      "ephemeral",
      "keyCounts",
      "toDevice",
    ]);
    await as.drain();
    assert.deepEqual(h.calls.find((c) => c.handler === "ephemeral")!.data, [typing]);
    await as.drain();
    assert.deepEqual(h.calls.find((c) => c.handler === "toDevice")!.data, [toDevice]);
    await as.drain();
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
    await as.drain();
    assert.equal(h.calls.length, 6);
    assert.deepEqual(h.calls.find((c) => c.handler === "keyCounts" && c.transactionId === "eph2")!.data, {
      oneTimeKeysCount: { "@test_bob:example.org": { D: { signed_curve25519: 1 } } },
      unusedFallbackKeyTypes: {},
    });
    // A replay delivers nothing.
    assert.equal((await put(cb, "eph1", body)).status, 200);
    await as.drain();
    assert.equal(h.calls.length, 6);
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
    await as.drain();
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
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev3:example.org", "$ev1:example.org", "$ev2:example.org"]);
    await close();
  });

  it("ephemeral data is best effort: handed over after the answer, not again on a replay", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const body = {
      events: [event("!a:example.org", 1)],
      ephemeral: [{ type: "m.typing", room_id: "!a:example.org", content: {} }],
    };
    assert.equal((await put(cb, "ep", body)).status, 200);
    assert.equal((await put(cb, "ep", body)).status, 200);
    await as.drain();
    await waitFor(() => h.calls.some((c) => c.handler === "ephemeral"), "the ephemeral call");
    assert.equal(h.calls.filter((c) => c.handler === "ephemeral").length, 1);
    assert.equal(h.events.length, 1);
    await close();
  });

  it("a hung onEphemeral times out: later ephemeral data still arrives and close does not wait for it", async () => {
    const h = new RecordingHandlers();
    let aborted = false;
    const seen: string[] = [];
    h.onEphemeral = (_events: unknown[], ctx: { transactionId: string; signal?: AbortSignal }) => {
      seen.push(ctx.transactionId);
      if (ctx.transactionId !== "hang") return Promise.resolve();
      ctx.signal?.addEventListener("abort", () => (aborted = true));
      return new Promise<void>(() => undefined); // never settles
    };
    const { as, close, log } = await makeApp(h, { handlerTimeoutMs: 50 });
    const cb = as.app.callback();
    const typing = { ephemeral: [{ type: "m.typing", room_id: "!a:example.org", content: {} }] };
    assert.equal((await put(cb, "hang", { events: [], ...typing })).status, 200);
    assert.equal((await put(cb, "next", { events: [], ...typing })).status, 200);
    await waitFor(() => seen.includes("next"), "the next ephemeral batch");
    assert.ok(aborted, "the hung call's signal was aborted at its timeout");
    assert.match(log.text, /onEphemeral did not settle within 50 ms/);
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
