// What of a fetched history batch is sent (src/backfill/select.ts): shape checks, the query's
// bounds (after the anchor, not before maxAge, the newest `limit`), one per remote id, oldest first.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HistoryMessage } from "../../../src/adapter/index.js";
import { historyMessageProblem, selectHistory } from "../../../src/backfill/index.js";

const msg = (remoteId: string, ts: number, body = remoteId): HistoryMessage => ({
  remoteId,
  from: "bob",
  content: body,
  ts,
});
const ids = (ms: HistoryMessage[]) => ms.map((m) => m.remoteId);

describe("selectHistory", () => {
  it("sorts by remote time, oldest first; equal times keep the adapter's order", () => {
    const { messages, invalid } = selectHistory(
      [msg("c", 30), msg("a", 10), msg("b2", 20), msg("b1", 20), msg("d", 40)],
      { limit: 10 },
    );
    assert.deepEqual(ids(messages), ["a", "b2", "b1", "c", "d"]);
    assert.deepEqual(invalid, []);
  });

  it("keeps the newest `limit`", () => {
    const batch = Array.from({ length: 10 }, (_, i) => msg(`m${i}`, 1000 + i));
    assert.deepEqual(ids(selectHistory(batch, { limit: 3 }).messages), ["m7", "m8", "m9"]);
    assert.deepEqual(ids(selectHistory(batch, { limit: 0 }).messages), []);
  });

  it("drops the anchor and what is older than it", () => {
    const batch = [msg("m1", 10), msg("m2", 20), msg("m3", 30), msg("m3b", 30), msg("m4", 40)];
    const { messages } = selectHistory(batch, { limit: 10, after: { remoteId: "m3", ts: 30 } });
    assert.deepEqual(ids(messages), ["m3b", "m4"], "the anchor itself goes; its equal-time neighbour stays");
  });

  it("drops what is older than notBefore (config backfill.maxAgeMs)", () => {
    const batch = [msg("old", 999), msg("edge", 1000), msg("new", 2000)];
    assert.deepEqual(ids(selectHistory(batch, { limit: 10, notBefore: 1000 }).messages), ["edge", "new"]);
  });

  it("keeps one message per remote id (the first given)", () => {
    const { messages } = selectHistory([msg("m1", 10, "first"), msg("m1", 11, "again"), msg("m2", 12)], {
      limit: 10,
    });
    assert.deepEqual(
      messages.map((m) => m.content),
      ["first", "m2"],
    );
  });

  it("skips malformed messages and says why; refuses a non-array", () => {
    const { messages, invalid } = selectHistory(
      [
        msg("ok", 1),
        { ...msg("", 2) },
        { ...msg("nots", 3), ts: 1.5 },
        { remoteId: "x", from: "bob", ts: 4 },
        null,
      ],
      { limit: 10 },
    );
    assert.deepEqual(ids(messages), ["ok"]);
    assert.equal(invalid.length, 4);
    assert.match(invalid[0]!, /^message 1: remoteId must be a non-empty string/);
    assert.match(invalid[1]!, /^message 2: ts must be a non-negative integer \(ms\), got 1.5/);
    assert.match(invalid[2]!, /^message 3: content needs a string body/);
    assert.match(invalid[3]!, /^message 4: must be an object, got null/);
    assert.throws(
      () => selectHistory({ messages: [] }, { limit: 1 }),
      /fetchHistory must resolve to an array of messages, got \{"messages":\[\]\}/,
    );
  });

  it("checks replyTo, thread and externalUrl when set", () => {
    assert.match(
      historyMessageProblem({ ...msg("a", 1), replyTo: "" })!,
      /replyTo must be a non-empty string/,
    );
    assert.equal(historyMessageProblem({ ...msg("a", 1), thread: "root", content: { body: "x" } }), null);
  });
});
