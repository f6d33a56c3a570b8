// The adapter-side helpers of src/remote-intake: the ordered queue, the profile cache, the start barrier.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OrderedQueue, type OrderedQueueOptions } from "../../../src/remote-intake/ordered-queue.js";
import { ProfileCache } from "../../../src/remote-intake/profile-cache.js";
import { StartBarrier } from "../../../src/remote-intake/start-barrier.js";
import type { RemoteProfile } from "../../../src/adapter/adapter.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function queue(extra: Partial<OrderedQueueOptions> = {}) {
  const calls: string[] = [];
  const errors: Array<{ err: unknown; key: string; label: string | undefined }> = [];
  const q = new OrderedQueue({
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    onError: (err, key, label) => errors.push({ err, key, label }),
    ...extra,
  });
  return { q, calls, errors };
}

describe("OrderedQueue", () => {
  it("runs one key's tasks strictly in order, never overlapping", async () => {
    const { q } = queue({ concurrency: 4 });
    const seen: number[] = [];
    let running = 0;
    let maxRunning = 0;
    for (let i = 0; i < 20; i++) {
      q.add("room", async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise<void>((r) => setImmediate(r));
        seen.push(i);
        running--;
      });
    }
    await q.onIdle();
    assert.deepEqual(seen, [...Array(20).keys()]);
    assert.equal(maxRunning, 1);
  });

  it("runs different keys in parallel up to concurrency", async () => {
    const { q } = queue({ concurrency: 2 });
    const gates = [deferred(), deferred(), deferred()];
    const started: string[] = [];
    ["a", "b", "c"].forEach((key, i) =>
      q.add(key, async () => {
        started.push(key);
        await gates[i]!.promise;
      }),
    );
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(started, ["a", "b"], "a third lane waits for a free slot");
    gates[0]!.resolve();
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(started, ["a", "b", "c"]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await q.onIdle();
    assert.equal(q.size, 0);
  });

  it("pauses above the high mark and resumes below the low mark, once each", async () => {
    const { q, calls } = queue({ highWater: 5, lowWater: 2 });
    const gate = deferred();
    for (let i = 0; i < 8; i++) q.add("room", () => (i === 0 ? gate.promise : Promise.resolve()));
    assert.deepEqual(calls, ["pause"]);
    assert.equal(q.isPaused, true);
    gate.resolve();
    await q.onIdle();
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.equal(q.isPaused, false);
  });

  it("reports a failed task with its key and label and goes on with the lane", async () => {
    const { q, errors } = queue();
    const ran: string[] = [];
    q.add("room", () => Promise.reject(new Error("boom")), "privmsg");
    q.add("room", () => Promise.resolve(void ran.push("next")));
    await q.onIdle();
    assert.deepEqual(ran, ["next"]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.key, "room");
    assert.equal(errors[0]!.label, "privmsg");
    assert.match(String(errors[0]!.err), /boom/);
  });

  it("clear drops what has not started and resumes paused reads", async () => {
    const { q, calls } = queue({ highWater: 3, lowWater: 2 });
    const gate = deferred();
    const ran: number[] = [];
    q.add("room", async () => {
      await gate.promise;
      ran.push(0);
    });
    q.add("room", () => Promise.resolve(void ran.push(1)));
    q.add("room", () => Promise.resolve(void ran.push(2)));
    q.add("room", () => Promise.resolve(void ran.push(3)));
    assert.deepEqual(calls, ["pause"]);
    q.clear();
    assert.deepEqual(calls, ["pause", "resume"]);
    gate.resolve();
    await q.onIdle();
    assert.deepEqual(ran, [0]);
  });

  it("refuses water marks that cannot work, naming them", () => {
    assert.throws(() => queue({ highWater: 10, lowWater: 10 }), /lowWater \(10\).*highWater \(10\)/);
    assert.throws(() => queue({ concurrency: 0 }), /concurrency .* got 0/);
  });
});

describe("ProfileCache", () => {
  function ctx() {
    const calls: Array<[string, RemoteProfile]> = [];
    let failNext = false;
    return {
      calls,
      failOnce: () => (failNext = true),
      setProfile: (user: string, profile: RemoteProfile) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("homeserver down"));
        }
        calls.push([user, profile]);
        return Promise.resolve();
      },
    };
  }

  it("sets a ghost's profile once per change", async () => {
    const c = ctx();
    const cache = new ProfileCache();
    await cache.ensure(c, "alice", { displayName: "Alice" });
    await cache.ensure(c, "alice", { displayName: "Alice" });
    await cache.ensure(c, "alice", { displayName: "ALICE" });
    await cache.ensure(c, "alice", { displayName: "ALICE", avatarUrl: "mxc://x/y" });
    assert.deepEqual(
      c.calls.map(([, p]) => p),
      [{ displayName: "Alice" }, { displayName: "ALICE" }, { displayName: "ALICE", avatarUrl: "mxc://x/y" }],
    );
  });

  it("does not remember a failed set", async () => {
    const c = ctx();
    const cache = new ProfileCache();
    c.failOnce();
    await assert.rejects(cache.ensure(c, "bob", { displayName: "Bob" }), /homeserver down/);
    await cache.ensure(c, "bob", { displayName: "Bob" });
    assert.equal(c.calls.length, 1);
  });

  it("is bounded: past max, the least recently used ghost is set again", async () => {
    const c = ctx();
    const cache = new ProfileCache({ max: 2 });
    for (const u of ["a", "b", "c"]) await cache.ensure(c, u, { displayName: u });
    assert.equal(cache.size, 2);
    await cache.ensure(c, "a", { displayName: "a" });
    assert.equal(c.calls.length, 4);
    cache.forget("a");
    await cache.ensure(c, "a", { displayName: "a" });
    assert.equal(c.calls.length, 5);
  });
});

describe("StartBarrier", () => {
  it("holds waiters until opened, then lets everyone through at once", async () => {
    const b = new StartBarrier();
    let passed = false;
    const waiting = b.wait(60_000, () => new Error("timeout")).then(() => (passed = true));
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(passed, false);
    b.open();
    await waiting;
    assert.equal(passed, true);
    await b.wait(1, () => new Error("must not time out when open"));
  });

  it("rejects waiters with the failure, and later waits until opened again", async () => {
    const b = new StartBarrier();
    const waiting = b.wait(60_000, () => new Error("timeout"));
    b.fail(new Error("the adapter is stopping"));
    await assert.rejects(waiting, /stopping/);
    await assert.rejects(
      b.wait(60_000, () => new Error("timeout")),
      /stopping/,
    );
    b.open();
    await b.wait(60_000, () => new Error("timeout"));
  });

  it("times out with the caller's error; close makes later calls wait again", async () => {
    const b = new StartBarrier();
    await assert.rejects(
      b.wait(5, () => new Error("not started within 5 ms")),
      /within 5 ms/,
    );
    b.open();
    b.close();
    assert.equal(b.isOpen, false);
    await assert.rejects(
      b.wait(5, () => new Error("offline")),
      /offline/,
    );
  });
});
