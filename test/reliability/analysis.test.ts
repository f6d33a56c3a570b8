// The reliability analysis itself: it must catch what the crash tests exist to catch, or a
// broken bridge would pass them. Pure and fast.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyseDeliveries, analyseRemote, type PlannedEvent } from "./support/analysis.js";

const plan: PlannedEvent[] = [
  { eventId: "$a0", room: 0, seq: 0 },
  { eventId: "$b0", room: 1, seq: 0 },
  { eventId: "$a1", room: 0, seq: 1 },
  { eventId: "$a2", room: 0, seq: 2 },
];
const handled = (id: string) => [`S ${id}`, `D ${id}`];

describe("analyseDeliveries", () => {
  it("a clean run: nothing lost, duplicated or out of order", () => {
    const r = analyseDeliveries(["B 1", ...plan.flatMap((p) => handled(p.eventId)), "X"], plan);
    assert.deepEqual([r.lost, r.duplicates, r.orderViolations, r.unknown], [[], 0, [], []]);
    assert.deepEqual([r.lifetimes, r.kills, r.deliveries], [1, 0, 4]);
  });

  it("an event never finished is lost, even if its handler started", () => {
    const r = analyseDeliveries(
      ["B 1", ...handled("$a0"), ...handled("$b0"), "S $a1", "K", "B 2", "X"],
      plan,
    );
    assert.deepEqual(r.lost, ["$a1", "$a2"]);
  });

  it("a redelivery of its room's last event before a kill is explained", () => {
    const lines = ["B 1", ...handled("$a0"), ...handled("$a1"), ...handled("$b0"), "K", "B 2"];
    const r = analyseDeliveries([...lines, ...handled("$a1"), ...handled("$a2"), "X"], plan);
    assert.deepEqual([r.duplicates, r.explainedDuplicates, r.unexplainedDuplicates], [1, 1, []]);
    assert.deepEqual(r.orderViolations, []);
  });

  it("a redelivery of an event followed by another of its room is not explained", () => {
    const lines = ["B 1", ...handled("$a0"), ...handled("$a1"), ...handled("$b0"), "K", "B 2"];
    const r = analyseDeliveries([...lines, ...handled("$a0"), ...handled("$a2"), "X"], plan);
    assert.equal(r.unexplainedDuplicates.length, 1);
    assert.match(r.unexplainedDuplicates[0]!, /\$a0 delivered again/);
  });

  it("a redelivery after a clean stop, or within one process, is not explained", () => {
    const afterStop = analyseDeliveries(["B 1", ...handled("$a0"), "X", "B 2", ...handled("$a0")], plan);
    assert.equal(afterStop.unexplainedDuplicates.length, 1);
    const sameProcess = analyseDeliveries(["B 1", ...handled("$a0"), ...handled("$a0")], plan);
    assert.equal(sameProcess.unexplainedDuplicates.length, 1);
  });

  it("out of order within a process, or a gap filled later, is an order violation", () => {
    const within = analyseDeliveries(["B 1", ...handled("$a1"), ...handled("$a0")], plan);
    assert.ok(within.orderViolations.length >= 1);
    const gap = analyseDeliveries(
      ["B 1", ...handled("$a0"), ...handled("$a2"), "K", "B 2", ...handled("$a1")],
      plan,
    );
    assert.ok(gap.orderViolations.some((v) => /\$a1 \(#1\) first delivered after #2/.test(v)));
  });

  it("tries after a retryable failure are retries, not duplicates, also after a restart", () => {
    const lines = ["B 1", ...handled("$a0"), "S $a1", "R $a1", "S $a1", "R $a1", ...handled("$b0"), "K"];
    const r = analyseDeliveries([...lines, "B 2", ...handled("$a1"), ...handled("$a2"), "X"], plan);
    assert.deepEqual([r.lost, r.duplicates, r.orderViolations, r.unknown], [[], 0, [], []]);
    assert.deepEqual([r.retryableFailures, r.retries, r.kills, r.killsWhileRetrying], [2, 2, 1, 1]);
    // A process killed before it wrote its B line ends no lifetime a second time.
    const twice = analyseDeliveries([...lines, "K", "B 2", ...handled("$a1"), "X"], plan);
    assert.deepEqual([twice.kills, twice.killsWhileRetrying, twice.lifetimes], [1, 1, 2]);
  });

  it("a room that moves on while an event waits for its retry is an order violation", () => {
    const r = analyseDeliveries(
      ["B 1", ...handled("$a0"), "S $a1", "R $a1", ...handled("$a2"), "S $a1"],
      plan,
    );
    assert.ok(r.orderViolations.some((v) => /\$a2 \(#2\) started before #1/.test(v)));
    assert.ok(r.orderViolations.some((v) => /\$a1 \(#1\) started after #2/.test(v)));
  });

  it("an event that failed for good is dead-lettered, not lost; the room goes on", () => {
    const lines = ["B 1", ...handled("$a0"), "S $a1", "P $a1", ...handled("$a2"), ...handled("$b0"), "K"];
    const r = analyseDeliveries([...lines, "B 2", "X"], plan);
    assert.deepEqual([r.lost, r.deadLettered, r.handledAndDead, r.orderViolations], [[], ["$a1"], [], []]);
    assert.equal(r.killsWithDeadLetters, 1);
    // Failed for good again after a kill: a redelivery, allowed only in the kill window.
    const again = analyseDeliveries(
      ["B 1", ...handled("$a0"), "S $a1", "P $a1", "K", "B 2", "S $a1", "P $a1"],
      plan,
    );
    assert.deepEqual([again.duplicates, again.explainedDuplicates], [1, 1]);
    const late = analyseDeliveries(["B 1", "S $a1", "P $a1", "S $a1", "D $a1"], plan);
    assert.deepEqual([late.unexplainedDuplicates.length, late.handledAndDead], [1, ["$a1"]]);
  });

  it("deliveries of unknown events are reported", () => {
    const r = analyseDeliveries(["S $zz", "B 1", "S $zz"], plan);
    assert.equal(r.unknown.length, 2);
  });
});

describe("analyseRemote", () => {
  const lines = ["B 1", "S 0", "A 0", "S 1", "A 1", "S 2", "K", "B 2", "S 3", "A 3", "F"];

  it("accepted messages present once and in order pass; an unresolved one may arrive", () => {
    const r = analyseRemote(lines, [
      [0, 2],
      [1, 3],
    ]);
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations, r.unexpected], [[], [], [], []]);
    assert.deepEqual([r.accepted, r.offeredUnresolved, r.unresolvedArrived, r.kills], [3, 1, 1, 1]);
    assert.equal(r.finished, true);
  });

  it("catches lost, duplicated, reordered, misplaced and never-offered messages", () => {
    assert.deepEqual(analyseRemote(lines, [[0], [1]]).lost, [3]);
    assert.deepEqual(
      analyseRemote(lines, [
        [0, 0],
        [1, 3],
      ]).duplicated,
      [0],
    );
    assert.equal(analyseRemote(lines, [[0], [3, 1]]).orderViolations.length, 1);
    assert.ok(analyseRemote(lines, [[0, 1], [3]]).unexpected.some((u) => /#1 arrived in room 0/.test(u)));
    assert.ok(
      analyseRemote(lines, [
        [0, 4],
        [1, 3],
      ]).unexpected.some((u) => /#4 .*never offered/.test(u)),
    );
  });
});
