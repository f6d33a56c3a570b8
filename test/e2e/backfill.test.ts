// History backfill end to end (issue #17): a real Synapse and an in-process Bridge whose
// adapter has fetchHistory. A Matrix user joining the portal's alias makes the portal; its 50
// remote history messages reach the room in order, each with origin_server_ts = its remote
// time, from ghosts with their remote names, before a live message sent while the history
// was being fetched (which is also in the history: it appears once). Then a reconnect after
// a gap: ctx.backfill fills the missed messages, before the live one sent after the call,
// with no duplicates. The same paths on the fake homeserver: test/unit/bridge/backfill.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HistoryMessage, HistoryQuery } from "../../src/adapter/index.js";
import type { Bridge } from "../../src/bridge/index.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { TestAdapter } from "../support/bridge-harness.js";
import { capturedLog } from "./support/logins-e2e.js";
import { describeEvent, MatrixUser, poll } from "./support/matrix-user.js";
import { startInProcessBridge, type InProcessBridge } from "./support/in-process-bridge.js";

const DOMAIN = "localhost";
const SENDERS = ["bob", "carol", "dave"];

/** A remote network with a room's history; fetchHistory answers as a real network would (after, limit). */
class HistoryAdapter extends TestAdapter {
  history: HistoryMessage[] = [];
  readonly queries: HistoryQuery[] = [];
  gate: Promise<void> | undefined;
  fetchHistory = async (_room: string, query: HistoryQuery): Promise<HistoryMessage[]> => {
    this.queries.push(query);
    await this.gate;
    const after = query.after;
    const newer = this.history.filter((m) => !after || m.ts > after.ts);
    return newer.slice(-query.limit);
  };
}

describe("backfill through Synapse: a new portal's 50 history messages, then a gap filled after a reconnect", () => {
  let running: InProcessBridge | undefined;
  let bridge: Bridge | undefined;
  let alice: MatrixUser;
  let roomId = "";
  /** The remote time of the live message sent after the join. */
  let liveTs = 0;
  const adapter = new HistoryAdapter();
  const log = capturedLog();
  const t0 = Date.now() - 3 * 3600_000; // three hours ago
  const remote = (n: number, ts: number, extra: Partial<HistoryMessage> = {}): HistoryMessage => ({
    remoteId: `r${n}`,
    from: SENDERS[n % SENDERS.length]!,
    content: `remote message ${n}`,
    ts,
    profile: { displayName: `${SENDERS[n % SENDERS.length]!} (remote)` },
    ...extra,
  });

  /** The room's messages as Alice reads them, oldest first. */
  async function messages(): Promise<MatrixEvent[]> {
    return (await alice.timeline(roomId, 1000)).filter((e) => e.type === "m.room.message");
  }
  async function waitForBody(body: string): Promise<MatrixEvent> {
    return alice.waitForEvent(roomId, (e) => e.content.body === body, `"${body}"`, 60_000);
  }

  before(async () => {
    running = await startInProcessBridge({
      id: "backfill",
      prefix: "bf",
      senderLocalpart: "bfbot",
      adapter,
      logger: log.logger,
      configLines: [
        "client: { retryAttempts: 4, maxBackoffMs: 500 }",
        "backfill: { maxOnCreate: 50, maxAfterGap: 100 }",
      ],
    });
    bridge = running.bridge;
    const user = await running.synapse.registerUser("alice");
    alice = new MatrixUser(running.synapse.url, user.userId, user.accessToken);
  });

  after(async () => {
    await running?.stop();
  });

  it("a portal made with 50 remote history messages shows them in order with their remote times, before a live message", async () => {
    // 60 messages on the remote side, one a minute; the newest 50 are backfilled. r55 replies to r52.
    adapter.history = Array.from({ length: 60 }, (_, i) =>
      remote(i + 1, t0 + i * 60_000, i + 1 === 55 ? { replyTo: "r52" } : {}),
    );
    let open!: () => void;
    adapter.gate = new Promise((resolve) => (open = resolve));
    roomId = await alice.join(`#bf_lobby:${DOMAIN}`);
    await poll(
      () => Promise.resolve(adapter.queries.length === 1 ? true : undefined),
      () => `fetchHistory was not called\n${log.tail()}`,
    );
    assert.deepEqual(adapter.queries[0], { limit: 50 });
    // While the history is fetched, the network delivers a live message, and the newest
    // history message again (a live copy that overlaps the history).
    liveTs = Date.now();
    await adapter.ctx!.send("lobby", "erin", "live after join", { remoteId: "live-1", ts: liveTs });
    await adapter.ctx!.send("lobby", "dave", "remote message 60", { remoteId: "r60", ts: t0 + 59 * 60_000 });
    open();
    await waitForBody("live after join");
    await bridge!.flush();

    const events = await messages();
    const expected = adapter.history.slice(10);
    assert.deepEqual(
      events.map((e) => e.content.body),
      [...expected.map((m) => m.content), "live after join"],
      events.map(describeEvent).join("\n"),
    );
    events.slice(0, 50).forEach((e, i) => {
      const m = expected[i]!;
      assert.equal(e.origin_server_ts, m.ts, `origin_server_ts of ${m.remoteId}`);
      assert.equal(e.sender, `@bf_${m.from}:${DOMAIN}`);
    });
    assert.equal(events[50]!.origin_server_ts, liveTs);
    const reply = events.find((e) => e.content.body === "remote message 55")!;
    const target = events.find((e) => e.content.body === "remote message 52")!;
    assert.deepEqual(reply.content["m.relates_to"], { "m.in_reply_to": { event_id: target.event_id } });
    const profile = await alice.request<{ displayname?: string }>(
      "GET",
      `/_matrix/client/v3/profile/${encodeURIComponent(`@bf_carol:${DOMAIN}`)}`,
    );
    assert.equal(profile.displayname, "carol (remote)", "a history sender's ghost has its remote name");
  });

  it("a reconnect after a gap fills it, before the live message sent after, with no duplicates", async () => {
    // Disconnected: r61..r70 were said meanwhile. Reconnected: backfill first, then live.
    const base = Date.now();
    for (let n = 61; n <= 70; n++) adapter.history.push(remote(n, base + (n - 60) * 1000));
    await adapter.ctx!.backfill("lobby");
    await adapter.ctx!.send("lobby", "dave", "remote message 70", { remoteId: "r70", ts: base + 10_000 });
    await adapter.ctx!.send("lobby", "erin", "live after reconnect", {
      remoteId: "live-2",
      ts: base + 20_000,
    });
    await waitForBody("live after reconnect");
    await bridge!.flush();

    assert.deepEqual(adapter.queries.at(-1), { limit: 100, after: { remoteId: "live-1", ts: liveTs } });
    const bodies = (await messages()).map((e) => e.content.body as string);
    assert.deepEqual(bodies.slice(51), [
      ...Array.from({ length: 10 }, (_, i) => `remote message ${61 + i}`),
      "live after reconnect",
    ]);
    assert.equal(new Set(bodies).size, bodies.length, `a message appears twice: ${bodies.join(", ")}`);
    assert.equal(bodies.length, 62);
    const gap = (await messages()).slice(51, 61);
    gap.forEach((e, i) => assert.equal(e.origin_server_ts, base + (i + 1) * 1000));
  });
});
