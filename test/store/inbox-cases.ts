// The inbox and its dead letters on a real backend: what a crash leaves is replayed by a new
// Inbox over the same store, and dead letters are kept, bounded and removable.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { DeadLetters, Inbox, type DeadLetter } from "../../src/inbox/index.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import type { Store } from "../../src/store/index.js";
import { openTestStore, type Backend } from "./backends.js";

/** Event n of room `room`, with a unicode field (it must round-trip through every backend). */
export const ev = (n: number, room = "!a:x"): MatrixEvent => ({
  event_id: `$e${n}:x`,
  room_id: room,
  type: "m.room.message",
  sender: "@u:x",
  origin_server_ts: n,
  content: { body: `m${n}`, unicode: "日本語🙂" },
});
/** A transaction of these events and nothing else. */
export const txn = (...events: MatrixEvent[]) => ({
  events,
  toDevice: [],
  deviceLists: undefined,
  keyCounts: undefined,
});

function letter(n: number): DeadLetter {
  const event = ev(n);
  return {
    id: event.event_id,
    roomId: event.room_id,
    item: { kind: "event", event },
    reason: "permanent",
    error: { name: "PermanentError", message: "no access_token=secret123 here" },
    userMessage: "not today",
    attempts: 1,
    firstTriedAt: 1,
    lastTriedAt: 1,
    deadAt: 1,
  };
}

export function inboxCases(backend: Backend): void {
  describe(`Inbox and DeadLetters on ${backend.name}`, () => {
    let store: Store;
    before(async () => {
      store = await openTestStore(backend, { fresh: true });
    });
    after(async () => {
      await store?.close();
    });

    it("replays what was recorded and not handled to a new Inbox on the same store", async () => {
      const first = new Inbox(store, { transactions: 50 });
      const t1 = (await first.record("t1", txn(ev(1), ev(2))))!;
      const t2 = (await first.record("t2/../é", txn(ev(3, "!b:x"))))!;
      await first.markHandled(t1, 0);
      await first.markHandled(t2, 0);
      const second = new Inbox(store, { transactions: 50 });
      const pending = await second.open();
      assert.deepEqual(
        pending.map((p) => [p.txnId, p.handled]),
        [["t1", [true, false]]],
      );
      const item = pending[0]!.items[1]!;
      assert.equal(item.kind === "event" && item.event.content.unicode, "日本語🙂");
      assert.equal(await second.record("t2/../é", txn(ev(9))), undefined, "a done transaction is a no-op");
      assert.deepEqual(
        (await second.record("t3", txn(ev(3), ev(4))))?.items.map(
          (i) => i.kind === "event" && i.event.event_id,
        ),
        ["$e4:x"],
        "a recent event id is not recorded again",
      );
    });

    it("keeps dead letters (tokens masked), bounded, in order, and removes them", async () => {
      const letters = new DeadLetters(store, { max: 2, secrets: ["hs-secret-xyz"] });
      await letters.add({ ...letter(1), error: { name: "Error", message: "token hs-secret-xyz leaked" } });
      await letters.add(letter(2));
      assert.equal(
        (await letters.get("$e1:x"))?.error.message,
        "token *** leaked",
        "a registration token is masked",
      );
      assert.deepEqual(await letters.add(letter(3)), ["$e1:x"], "the oldest is dropped past max");
      const kept = await new DeadLetters(store).list();
      assert.deepEqual(
        kept.map((l) => l.id),
        ["$e2:x", "$e3:x"],
      );
      assert.equal(kept[0]!.error.message, "no access_token=*** here");
      assert.equal(await letters.requestRetry("$e2:x"), true);
      assert.equal((await letters.get("$e2:x"))?.retryRequested, true);
      assert.equal(await letters.remove("$e2:x"), true);
      assert.equal(await letters.remove("$e2:x"), false);
      assert.equal(await letters.count(), 1);
    });
  });
}
