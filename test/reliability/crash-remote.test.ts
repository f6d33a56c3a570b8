// Remote -> Matrix under SIGKILL: the adapter sends numbered messages through ctx.send
// (each resolve = accepted, recorded), the bridge child is killed at random moments and
// restarted on the same store; at the end the homeserver holds every accepted message,
// in order per room, none twice (the outbox resends an item with its own txnId, the
// homeserver deduplicates by it; the check is by message number, not by txnId).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FakeHomeserver } from "../support/fake-homeserver.js";
import { analyseRemote } from "./support/analysis.js";
import type { ChildBridge } from "./support/child-bridge.js";
import { crashWorld } from "./support/crash-world.js";
import { seededRandom, sleep } from "./support/random.js";
import { readRecords } from "./support/record-file.js";
import { REMOTE_BODY } from "./support/recording-adapter.js";

const ROOMS = ["room0", "room1", "room2", "room3"];
const TOTAL = 2500;
const KILLS = 25;

/** Per room, the message numbers in the order the homeserver stored them. */
function arrived(hs: FakeHomeserver, roomIds: string[]): number[][] {
  return roomIds.map((roomId) =>
    (hs.rooms.get(roomId)?.timeline ?? []).flatMap((e) => {
      const m = e.type === "m.room.message" ? REMOTE_BODY.exec(String(e.content.body)) : null;
      return m ? [Number(m[1])] : [];
    }),
  );
}

describe("crash: SIGKILL while the adapter sends remote -> Matrix", { timeout: 240_000 }, () => {
  it("every accepted message reaches the homeserver once, in order per room", async (t) => {
    const random = seededRandom();
    const world = await crashWorld({
      label: "remote",
      store: "sqlite://bridge.db",
      adapter: { rooms: ROOMS, sendTotal: TOTAL, senders: ["alice", "bob", "Carol|away"], sendPauseMs: 1 },
    });
    let child: ChildBridge | undefined;
    try {
      let kills = 0;
      const finished = () => readRecords(world.recordPath).includes("F");
      const accepted = () => readRecords(world.recordPath).filter((l) => l.startsWith("A ")).length;
      child = await world.spawn();
      while (kills < KILLS && !finished()) {
        // Sometimes during start-up (outbox resuming), mostly while sending. Kills while
        // sending are spaced by progress, not time: how fast the bridge sends depends on the
        // machine and the store, and the kills must spread over the whole plan.
        if (kills > 0 && random.next() < 0.2) await sleep(random.int(0, 500));
        else {
          await child.waitReady();
          // Spaced over what is left for the kills still to come, so that a plan that ran
          // ahead (sends go on while a child starts) still gets all its kills.
          const done = accepted();
          const target =
            done + random.int(1, Math.max(1, Math.floor((2 * (TOTAL - done)) / (KILLS - kills + 1))));
          while (accepted() < target && !finished()) await sleep(random.int(1, 10));
        }
        await child.kill();
        world.marks.append("K");
        kills++;
        child = await world.spawn();
      }
      await child.waitReady();
      const deadline = Date.now() + 120_000;
      while (!finished()) {
        if (Date.now() > deadline) throw new Error("the adapter did not finish its sends within 120 s");
        await sleep(100);
      }
      await child.flush();
      await child.stop();
      world.marks.append("X");

      const roomIds = ROOMS.map((r) => world.roomId(r));
      const report = analyseRemote(readRecords(world.recordPath), arrived(world.hs, roomIds));
      const sendRequests = world.hs.requestsTo("PUT", /\/send\/m\.room\.message\//);
      const resent = sendRequests.length - new Set(sendRequests.map((r) => `${r.userId} ${r.path}`)).size;
      t.diagnostic(
        `remote: seed ${random.seed}; ${TOTAL} messages over ${ROOMS.length} rooms; kills survived ${kills}; ` +
          `processes ${report.lifetimes}; accepted ${report.accepted}; offered but unresolved at a kill ` +
          `${report.offeredUnresolved} (${report.unresolvedArrived} of them arrived); on the homeserver ` +
          `${report.onHomeserver} (${sendRequests.length} send requests, ${resent} of them repeats of a txnId); lost ${report.lost.length}; ` +
          `duplicated ${report.duplicated.length}; order violations ${report.orderViolations.length}`,
      );
      assert.ok(report.finished, "the send plan finished");
      assert.ok(kills >= 10, `only ${kills} kills happened before the plan finished`);
      assert.equal(report.accepted + report.offeredUnresolved, TOTAL, "every number was offered once");
      assert.deepEqual(report.lost.slice(0, 20), [], `${report.lost.length} accepted messages never arrived`);
      assert.deepEqual(report.duplicated.slice(0, 20), [], "messages that arrived twice");
      assert.deepEqual(report.orderViolations.slice(0, 20), [], "per-room order");
      assert.deepEqual(report.unexpected.slice(0, 20), [], "messages in the wrong room or never offered");
    } catch (err) {
      if (child) t.diagnostic(`last bridge child stderr:\n${child.stderrTail()}`);
      throw err;
    } finally {
      await child?.kill();
      await world.close();
    }
  });
});
