// Private portals invite the Matrix users of logins: members that are logins at creation, the
// login whose session ensures the portal, a login that ctx.join()s it; public portals invite
// nobody. On the fake homeserver; on Synapse: test/e2e/rooms.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BridgeContext, RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { DOMAIN, startHarness, type Harness } from "../../support/bridge-harness.js";
import { FakeNetwork, loginsAdapter } from "../../support/fake-network.js";

const ALICE = `@alice:${DOMAIN}`;
const BOB = `@bob:${DOMAIN}`;
const CAROL = `@carol:${DOMAIN}`;

async function withLogins(
  fn: (h: Harness<RemoteNetworkAdapter>, network: FakeNetwork, ctx: () => BridgeContext) => Promise<void>,
) {
  const network = new FakeNetwork();
  const adapter = loginsAdapter(network);
  const h = await startHarness<RemoteNetworkAdapter>({ adapter });
  try {
    for (const [account, userId] of [
      ["alice", ALICE],
      ["bob", BOB],
      ["carol", CAROL],
    ] as const) {
      network.addAccount(account, "pw");
      await h.bridge.logins!.add(userId, {
        id: account,
        data: { token: network.accounts.get(account)!.token },
      });
    }
    await fn(h, network, () => adapter.ctx!);
  } finally {
    await h.stop();
  }
}

const members = (h: Harness<RemoteNetworkAdapter>, roomId: string) =>
  Object.fromEntries(
    [...h.hs.rooms.get(roomId)!.members].filter(([u]) => !u.startsWith("@test_") && u !== `@bot:${DOMAIN}`),
  );

describe("private portals", () => {
  it("invite the users of the session's login and of member logins; a later ctx.join invites its login's user", async () => {
    await withLogins(async (h, network, ctx) => {
      const alice = network.sessions.get("alice")!;
      const portal = await alice.ctx.portals.ensure("secret", {
        visibility: "private",
        name: "Secret",
        members: ["bob", "dave"],
      });
      assert.equal(portal.visibility, "private");
      assert.equal(h.hs.rooms.get(portal.roomId)!.joinRule, "invite");
      assert.deepEqual(members(h, portal.roomId), { [ALICE]: "invite", [BOB]: "invite" });

      await ctx().join("secret", "carol");
      await h.bridge.flush();
      assert.deepEqual(members(h, portal.roomId), { [ALICE]: "invite", [BOB]: "invite", [CAROL]: "invite" });

      // Ensuring it again invites nobody twice.
      const invites = h.hs.requestsTo("POST", /\/invite$/).length;
      await alice.ctx.portals.ensure("secret");
      assert.equal(h.hs.requestsTo("POST", /\/invite$/).length, invites);
      assert.equal((await h.bridge.portals.get("secret"))?.visibility, "private", "kept in the store");
    });
  });

  it("a public portal invites nobody", async () => {
    await withLogins(async (h, network) => {
      const portal = await network.sessions.get("alice")!.ctx.portals.ensure("open", { members: ["bob"] });
      assert.equal(portal.visibility, undefined);
      assert.deepEqual(members(h, portal.roomId), {});
    });
  });
});
