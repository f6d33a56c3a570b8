// Receipts and presence, best effort both ways: ctx.markRead as the ghost or (for a login's
// own account) as the user by double puppet, ctx.setPresence of ghosts, and Matrix presence
// to the sessions of a user's logins. On the fake homeserver; on Synapse: test/e2e/rooms.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import { DOMAIN, startHarness, withHarness, type Harness } from "../../support/bridge-harness.js";
import { FakeNetwork, loginsAdapter } from "../../support/fake-network.js";

const ALICE = `@alice:${DOMAIN}`;
const call = { signal: new AbortController().signal, log: silentLogger() };
const receipts = (h: Harness<RemoteNetworkAdapter>) =>
  h.hs.requestsTo("POST", /\/receipt\/m\.read\//).map((r) => [r.userId, r.path.split("/").at(-1)]);

async function withLogin(fn: (h: Harness<RemoteNetworkAdapter>, network: FakeNetwork) => Promise<void>) {
  const network = new FakeNetwork();
  network.addAccount("alice", "pw");
  const h = await startHarness<RemoteNetworkAdapter>({ adapter: loginsAdapter(network) });
  try {
    await h.bridge.logins!.add(ALICE, { id: "alice", data: { token: network.accounts.get("alice")!.token } });
    await fn(h, network);
  } finally {
    await h.stop();
  }
}

describe("ctx.markRead", () => {
  it("sends the ghost's m.read receipt on the message's event; skips unknown messages; swallows failures", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("chan");
      const ctx = h.adapter.ctx!;
      await ctx.send("chan", "carol", "read me", { remoteId: "m1" });
      await h.bridge.flush();
      const eventId = h.hs.events(portal.roomId, "m.room.message")[0]!.event_id;
      await ctx.markRead("chan", "m1", { user: "bob" });
      assert.deepEqual(receipts(h), [[h.bridge.ghosts.userId("bob"), eventId]]);
      assert.equal(h.hs.rooms.get(portal.roomId)!.members.get(h.bridge.ghosts.userId("bob")), "join");

      await ctx.markRead("chan", "never-seen", { user: "bob" });
      await ctx.markRead("no-portal", "m1", { user: "bob" });
      h.hs.script({ method: "POST", path: /\/receipt\// }, { status: 403, body: { errcode: "M_FORBIDDEN" } });
      await ctx.markRead("chan", "m1", { user: "bob" }); // refused: logged, not thrown, not retried
      assert.equal(receipts(h).length, 2);
      await assert.rejects(
        ctx.markRead("chan", "", { user: "bob" }),
        /remote message id must be a non-empty string/,
      );
    });
  });

  it("from a session, the login's own account reads as the Matrix user by double puppet; others as ghosts", async () => {
    await withLogin(async (h, network) => {
      h.hs.addAccessToken("alice-token", ALICE);
      await h.bridge.users.setDoublePuppetToken(ALICE, "alice-token");
      const portal = await h.portal("lobby");
      h.hs.rooms.get(portal.roomId)!.members.set(ALICE, "join");
      const session = network.sessions.get("alice")!;
      await session.ctx.send("lobby", "bob", "hi alice", { remoteId: "b1" });
      await h.bridge.flush();
      const eventId = h.hs.events(portal.roomId, "m.room.message")[0]!.event_id;
      await session.ctx.markRead("lobby", "b1", { user: "alice" });
      await session.ctx.markRead("lobby", "b1", { user: "bob" });
      assert.deepEqual(receipts(h), [
        [ALICE, eventId],
        [h.bridge.ghosts.userId("bob"), eventId],
      ]);
      const own = h.hs.requestsTo("POST", /\/receipt\//)[0]!;
      assert.equal((own.json as Record<string, unknown>)["fi.mau.double_puppet_source"], h.registration.id);
    });
  });
});

describe("presence", () => {
  it("ctx.setPresence sets a ghost's presence and status; a wrong state is refused at the call", async () => {
    await withHarness(async (h) => {
      await h.adapter.ctx!.setPresence("bob", "unavailable", "lunch");
      const put = h.hs.requestsTo("PUT", /\/presence\//);
      assert.equal(put.length, 1);
      assert.equal(put[0]!.userId, h.bridge.ghosts.userId("bob"));
      assert.deepEqual(put[0]!.json, { presence: "unavailable", status_msg: "lunch" });
      await assert.rejects(
        h.adapter.ctx!.setPresence("bob", "away" as "online"),
        /presence must be one of online, unavailable, offline, got "away"/,
      );
    });
  });

  it("a Matrix user's presence reaches the sessions of their connected logins, nobody else's", async () => {
    await withLogin(async (h, network) => {
      const seen = network.sessions.get("alice")!.presences;
      await h.bridge.router.onEphemeral(
        [
          {
            type: "m.presence",
            sender: ALICE,
            content: { presence: "online", status_msg: "here", currently_active: true, last_active_ago: 5 },
          },
          { type: "m.presence", sender: `@carol:${DOMAIN}`, content: { presence: "offline" } },
          { type: "m.presence", sender: h.bridge.ghosts.userId("bob"), content: { presence: "online" } },
          { type: "m.presence", sender: ALICE, content: { presence: "dancing" } },
        ],
        call,
      );
      assert.deepEqual(seen, [
        { userId: ALICE, presence: "online", statusMsg: "here", lastActiveAgoMs: 5, currentlyActive: true },
      ]);
    });
  });
});
