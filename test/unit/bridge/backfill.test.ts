// History backfill through the whole bridge on the fake homeserver (src/backfill): a new
// portal's history goes before live messages queued meanwhile, in remote-time order with its
// remote timestamps; history and live overlap without duplicates; a gap fill asks after the
// anchor; the config bounds it (count, age); a restart midway resumes without loss or
// duplicates; a failing fetch is given up and the room goes on. The same on Synapse:
// test/e2e/backfill.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  HistoryMessage,
  HistoryQuery,
  LoginsCapability,
  RemoteNetworkAdapter,
} from "../../../src/adapter/index.js";
import type { BridgeConfig } from "../../../src/config/types.js";
import { openStore } from "../../../src/store/index.js";
import {
  DOMAIN,
  startHarness,
  TestAdapter,
  testRegistration,
  withHarness,
} from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { dmRoom, FakeNetwork, loginsAdapter } from "../../support/fake-network.js";

class HistoryAdapter extends TestAdapter {
  /** The remote room's whole history; fetchHistory returns all of it (the framework filters). */
  history: HistoryMessage[] = [];
  readonly queries: Array<{ room: string; query: HistoryQuery }> = [];
  /** While set, fetchHistory waits for it. */
  gate: Promise<void> | undefined;
  failures = 0;
  fetchHistory = async (room: string, query: HistoryQuery): Promise<HistoryMessage[]> => {
    this.queries.push({ room, query });
    await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("remote history unavailable");
    }
    return [...this.history];
  };
}

const T0 = 1_700_000_000_000;
const hist = (n: number, from = "bob"): HistoryMessage => ({
  remoteId: `h${n}`,
  from,
  content: `history ${n}`,
  ts: T0 + n * 1000,
});

function messages(hs: FakeHomeserver, roomId: string) {
  return hs.events(roomId, "m.room.message").map((e) => ({
    body: e.content.body as string,
    ts: e.origin_server_ts,
    sender: e.sender,
  }));
}

function configure(changes: Partial<BridgeConfig["backfill"]> = {}) {
  return (config: BridgeConfig) => Object.assign(config.backfill, changes);
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

describe("backfill through the bridge", () => {
  it("a new portal's history comes first, oldest first, with remote times; live messages queued meanwhile after; an overlap once", async () => {
    const adapter = new HistoryAdapter();
    adapter.history = [hist(3), hist(1), hist(2), hist(4)];
    let open!: () => void;
    adapter.gate = new Promise((r) => (open = r));
    await withHarness(
      async (h) => {
        const portal = await h.portal("lobby");
        await until("the fetch started", () => adapter.queries.length === 1);
        assert.deepEqual(
          adapter.queries[0],
          { room: "lobby", query: { limit: 50 } },
          "nothing bridged: the newest 50",
        );
        // Live messages while the history is being fetched: one of them is also in the history.
        await h.adapter.ctx!.send("lobby", "carol", "history 4", { remoteId: "h4", ts: T0 + 4000 });
        await h.adapter.ctx!.send("lobby", "carol", "live", { remoteId: "l1", ts: T0 + 9000 });
        open();
        await h.bridge.flush();
        assert.deepEqual(messages(h.hs, portal.roomId), [
          { body: "history 1", ts: T0 + 1000, sender: `@test_bob:${DOMAIN}` },
          { body: "history 2", ts: T0 + 2000, sender: `@test_bob:${DOMAIN}` },
          { body: "history 3", ts: T0 + 3000, sender: `@test_bob:${DOMAIN}` },
          { body: "history 4", ts: T0 + 4000, sender: `@test_bob:${DOMAIN}` },
          { body: "live", ts: T0 + 9000, sender: `@test_carol:${DOMAIN}` },
        ]);
      },
      { adapter, configure: configure() },
    );
  });

  it("a portal made on demand by a live send lets its history go first", async () => {
    const adapter = new HistoryAdapter();
    adapter.createPortalsOnDemand = true;
    adapter.history = [hist(1), hist(2)];
    await withHarness(
      async (h) => {
        await h.adapter.ctx!.send("ondemand", "carol", "history 2", { remoteId: "h2", ts: T0 + 2000 });
        await h.adapter.ctx!.send("ondemand", "carol", "live", { remoteId: "l1", ts: T0 + 5000 });
        await h.bridge.flush();
        const portal = await h.bridge.portals.get("ondemand");
        assert.deepEqual(
          messages(h.hs, portal!.roomId).map((m) => m.body),
          ["history 1", "history 2", "live"],
        );
        assert.equal(messages(h.hs, portal!.roomId)[1]!.sender, `@test_bob:${DOMAIN}`, "history's h2 won");
      },
      { adapter, configure: configure() },
    );
  });

  it("a gap fill asks after the anchor, skips what was bridged, and goes before what is sent after the call", async () => {
    const adapter = new HistoryAdapter();
    await withHarness(
      async (h) => {
        const portal = await h.portal("gap");
        await h.bridge.flush();
        const ctx = h.adapter.ctx!;
        await ctx.send("gap", "bob", "history 1", { remoteId: "h1", ts: T0 + 1000 });
        await ctx.send("gap", "bob", "history 2", { remoteId: "h2", ts: T0 + 2000 });
        await h.bridge.flush();
        // Disconnected; h3..h5 were missed; on reconnect: backfill, then live.
        adapter.history = [hist(1), hist(2), hist(3), hist(4), hist(5)];
        await ctx.backfill("gap");
        await ctx.send("gap", "bob", "live", { remoteId: "l1", ts: T0 + 9000 });
        await h.bridge.flush();
        assert.deepEqual(adapter.queries.at(-1), {
          room: "gap",
          query: { limit: 500, after: { remoteId: "h2", ts: T0 + 2000 } },
        });
        assert.deepEqual(
          messages(h.hs, portal.roomId).map((m) => m.body),
          ["history 1", "history 2", "history 3", "history 4", "history 5", "live"],
        );
        // The anchor followed the live message: the next gap asks after it.
        await ctx.backfill("gap");
        await h.bridge.flush();
        assert.deepEqual(adapter.queries.at(-1)!.query.after, { remoteId: "l1", ts: T0 + 9000 });
        assert.equal(messages(h.hs, portal.roomId).length, 6, "nothing new, nothing twice");
        await ctx.backfill("no-portal"); // no portal: nothing asked
        await h.bridge.flush();
        assert.equal(adapter.queries.filter((q) => q.room === "no-portal").length, 0);
      },
      { adapter, configure: configure({ maxOnCreate: 0 }) },
    );
  });

  it("is bounded by count: the newest maxOnCreate for a new portal, the newest maxAfterGap for a gap", async () => {
    const adapter = new HistoryAdapter();
    adapter.history = Array.from({ length: 10 }, (_, i) => hist(i));
    await withHarness(
      async (h) => {
        const portal = await h.portal("counted");
        await h.bridge.flush();
        assert.deepEqual(
          messages(h.hs, portal.roomId).map((m) => m.body),
          ["history 7", "history 8", "history 9"],
        );
        adapter.history.push(...Array.from({ length: 20 }, (_, i) => hist(100 + i)));
        await h.adapter.ctx!.backfill("counted");
        await h.bridge.flush();
        assert.deepEqual(
          messages(h.hs, portal.roomId).map((m) => m.body),
          ["history 7", "history 8", "history 9", "history 118", "history 119"],
        );
        assert.deepEqual(
          adapter.queries.map((q) => q.query.limit),
          [3, 2],
        );
      },
      { adapter, configure: configure({ maxOnCreate: 3, maxAfterGap: 2 }) },
    );
  });

  it("is bounded by age: nothing older than maxAgeMs (by remote time)", async () => {
    const adapter = new HistoryAdapter();
    const now = Date.now();
    adapter.history = Array.from({ length: 10 }, (_, i) => ({
      remoteId: `m${i}`,
      from: "bob",
      content: `m${i}`,
      ts: now - (10 - i) * 60_000, // m0: 10 minutes ago ... m9: 1 minute ago
    }));
    await withHarness(
      async (h) => {
        const portal = await h.portal("aged");
        await h.bridge.flush();
        assert.deepEqual(
          messages(h.hs, portal.roomId).map((m) => m.body),
          ["m5", "m6", "m7", "m8", "m9"],
        );
        const notBefore = adapter.queries[0]!.query.notBefore;
        assert.ok(notBefore !== undefined && notBefore >= now - 330_000, "the adapter is told the age limit");
      },
      { adapter, configure: configure({ maxAgeMs: 330_000 }) },
    );
  });

  it("with backfill disabled, nothing is fetched", async () => {
    const adapter = new HistoryAdapter();
    adapter.history = [hist(1)];
    await withHarness(
      async (h) => {
        const portal = await h.portal("off");
        await h.adapter.ctx!.backfill("off");
        await h.bridge.flush();
        assert.deepEqual(adapter.queries, []);
        assert.deepEqual(messages(h.hs, portal.roomId), []);
      },
      { adapter, configure: configure({ enabled: false }) },
    );
  });

  it("a fetch that keeps failing is given up after 3 tries; the room's live messages then flow", async () => {
    const adapter = new HistoryAdapter();
    adapter.failures = 5;
    adapter.history = [hist(1)];
    await withHarness(
      async (h) => {
        const portal = await h.portal("failing");
        await h.adapter.ctx!.send("failing", "carol", "live", { remoteId: "l1" });
        await h.bridge.flush();
        assert.equal(adapter.queries.length, 3);
        assert.deepEqual(
          messages(h.hs, portal.roomId).map((m) => m.body),
          ["live"],
        );
      },
      { adapter, configure: configure() },
    );
  });
});

describe("backfill across a restart", () => {
  async function sharedSetup() {
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const store = await openStore(`sqlite://${join(await mkdtemp(join(tmpdir(), "bk-backfill-")), "b.db")}`);
    return { registration, hs, store };
  }

  it("midway through sending the history: the rest is sent once, in order, before the live message", async () => {
    const { registration, hs, store } = await sharedSetup();
    try {
      const history = Array.from({ length: 10 }, (_, i) => hist(i + 1, i === 3 ? "stall" : "bob"));
      const first = new HistoryAdapter();
      first.history = history;
      // The homeserver refuses h4's sender: the outbox retries it while we "crash".
      hs.script({ method: "PUT", path: "/send/", userId: `@test_stall:${DOMAIN}` }, { status: 500 }, 10_000);
      const h1 = await startHarness({ adapter: first, registration, hs, store, configure: configure() });
      const portal = await h1.portal("restart");
      await until("h1..h3 sent and h4 refused", () => {
        const refused = hs.requests.some(
          (r) => r.userId === `@test_stall:${DOMAIN}` && r.path.includes("/send/"),
        );
        return refused && messages(hs, portal.roomId).length === 3;
      });
      await first.ctx!.send("restart", "carol", "live", { remoteId: "l1", ts: T0 + 60_000 });
      await h1.stop();
      hs.clearScripts();

      const second = new HistoryAdapter();
      second.history = history;
      const h2 = await startHarness({ adapter: second, registration, hs, store, configure: configure() });
      await h2.bridge.flush();
      assert.deepEqual(second.queries, [], "the history was queued before the restart: not fetched again");
      assert.deepEqual(
        messages(hs, portal.roomId).map((m) => m.body),
        [...history.map((m) => m.content), "live"],
      );
      await h2.stop();
    } finally {
      await store.close();
      await hs.close();
    }
  });

  it("midway through the fetch: fetched again after the restart, still before the live message", async () => {
    const { registration, hs, store } = await sharedSetup();
    try {
      const first = new HistoryAdapter();
      first.history = [hist(1), hist(2)];
      first.gate = new Promise(() => undefined); // never answers
      const h1 = await startHarness({ adapter: first, registration, hs, store, configure: configure() });
      const portal = await h1.portal("refetch");
      await until("the fetch started", () => first.queries.length === 1);
      await first.ctx!.send("refetch", "carol", "live", { remoteId: "l1", ts: T0 + 60_000 });
      await h1.stop();
      assert.deepEqual(messages(hs, portal.roomId), [], "the live message waited for the history");

      const second = new HistoryAdapter();
      second.history = [hist(1), hist(2)];
      const h2 = await startHarness({ adapter: second, registration, hs, store, configure: configure() });
      await until("fetched again", () => second.queries.length === 1);
      await h2.bridge.flush();
      assert.deepEqual(
        messages(hs, portal.roomId).map((m) => m.body),
        ["history 1", "history 2", "live"],
      );
      await h2.stop();
    } finally {
      await store.close();
      await hs.close();
    }
  });
});

describe("backfill by a login's session", () => {
  it("fills the login's DM portal when it is made, and a shared portal when the session asks", async () => {
    const network = new FakeNetwork();
    network.addAccount("alice", "pw");
    network.addAccount("bob", "pw2");
    const base = loginsAdapter(network);
    const asked: Array<{ account: string; room: string; query: HistoryQuery }> = [];
    const connect = base.logins!.connect.bind(base.logins);
    const logins: LoginsCapability = {
      ...base.logins!,
      async connect(login, ctx, call) {
        const session = await connect(login, ctx, call);
        session.fetchHistory = (room, query) => {
          asked.push({ account: login.id, room, query });
          return Promise.resolve(
            [hist(1, "bob"), hist(2, "alice")].map((m) => ({ ...m, remoteId: `${room}/${m.remoteId}` })),
          );
        };
        return session;
      },
    };
    const adapter = { ...base, logins };
    await withHarness<RemoteNetworkAdapter>(
      async (h) => {
        const lobby = await h.portal("lobby"); // the adapter has no fetchHistory: nothing yet
        await h.bridge.flush();
        assert.deepEqual(messages(h.hs, lobby.roomId), []);
        await h.bridge.logins!.add(`@alice:${DOMAIN}`, {
          id: "alice",
          data: { token: network.accounts.get("alice")!.token },
        });
        const session = network.sessions.get("alice")!;
        const dm = await session.ctx.portals.ensure(dmRoom("alice", "bob"), {
          direct: true,
          members: ["bob"],
        });
        await session.ctx.backfill("lobby");
        await h.bridge.flush();
        assert.deepEqual(
          asked.map((a) => [a.account, a.room]),
          [
            ["alice", dmRoom("alice", "bob")],
            ["alice", "lobby"],
          ],
        );
        for (const roomId of [dm.roomId, lobby.roomId])
          assert.deepEqual(
            messages(h.hs, roomId).map((m) => [m.body, m.sender]),
            [
              ["history 1", `@test_bob:${DOMAIN}`],
              ["history 2", `@test_alice:${DOMAIN}`],
            ],
          );
      },
      { adapter, configure: configure() },
    );
  });
});
