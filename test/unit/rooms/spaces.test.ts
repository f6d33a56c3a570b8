// Spaces (config bridge.spaces) on the fake homeserver: one space of the shared portals with
// logins' users invited, or one space per login with its DMs and the portals its session
// uses; an upgraded portal moves in its space. On Synapse: test/e2e/rooms.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BridgeConfig } from "../../../src/config/types.js";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { DOMAIN, startHarness, type Harness } from "../../support/bridge-harness.js";
import { FakeNetwork, dmRoom, loginsAdapter } from "../../support/fake-network.js";

const ALICE = `@alice:${DOMAIN}`;
const BOT = `@bot:${DOMAIN}`;
type H = Harness<RemoteNetworkAdapter>;

async function withSpaces(
  spaces: BridgeConfig["bridge"]["spaces"],
  fn: (h: H, network: FakeNetwork) => Promise<void>,
): Promise<void> {
  const network = new FakeNetwork();
  network.addAccount("alice", "pw");
  network.addAccount("bob", "pw");
  const h = await startHarness<RemoteNetworkAdapter>({ adapter: loginsAdapter(network), bridge: { spaces } });
  try {
    await h.bridge.logins!.add(ALICE, { id: "alice", data: { token: network.accounts.get("alice")!.token } });
    await fn(h, network);
  } finally {
    await h.stop();
  }
}

const spaceOf = async (h: H, key: string) => h.store.namespace<string>("spaces").get(key);
const stateOf = (h: H, roomId: string, type: string, key: string) =>
  h.hs.rooms.get(roomId)?.state.get(`${type}\0${key}`)?.content;
const children = (h: H, space: string) =>
  [...h.hs.rooms.get(space)!.state.values()]
    .filter((e) => e.type === "m.space.child" && Object.keys(e.content).length > 0)
    .map((e) => e.state_key);

describe("spaces", () => {
  it("network: one space holds the shared portals (not DMs); a login's user is invited when its session uses one", async () => {
    await withSpaces("network", async (h, network) => {
      const lobby = await h.portal("lobby");
      const space = (await spaceOf(h, "network"))!;
      assert.ok(space, "the space was made with the first portal");
      assert.deepEqual(stateOf(h, space, "m.space.child", lobby.roomId), { via: [DOMAIN] });
      assert.deepEqual(stateOf(h, lobby.roomId, "m.space.parent", space), { via: [DOMAIN], canonical: true });
      assert.equal(h.hs.rooms.get(space)!.members.get(ALICE), undefined);

      const alice = network.sessions.get("alice")!;
      await alice.ctx.portals.ensure("lobby");
      assert.equal(h.hs.rooms.get(space)!.members.get(ALICE), "invite");
      await network.directMessage("bob", "alice", "hi");
      await h.bridge.flush();
      const dm = (await h.bridge.portals.get(dmRoom("bob", "alice"), "alice"))!;
      assert.deepEqual(children(h, space), [lobby.roomId], "the DM is not the network's");
      assert.equal(stateOf(h, dm.roomId, "m.space.parent", space), undefined);
    });
  });

  it("login: a space per login, its user invited, holding its DMs and the portals its session uses", async () => {
    await withSpaces("login", async (h, network) => {
      await h.portal("other");
      assert.equal(await spaceOf(h, "network"), undefined);
      const alice = network.sessions.get("alice")!;
      const lobby = await alice.ctx.portals.ensure("lobby");
      const space = (await spaceOf(h, "login alice"))!;
      assert.ok(space);
      assert.equal(h.hs.rooms.get(space)!.members.get(ALICE), "invite");
      await network.directMessage("bob", "alice", "hi");
      await h.bridge.flush();
      const dm = (await h.bridge.portals.get(dmRoom("bob", "alice"), "alice"))!;
      assert.deepEqual(children(h, space).sort(), [lobby.roomId, dm.roomId].sort());
    });
  });

  it("an upgraded portal replaces its old room in the space", async () => {
    await withSpaces("network", async (h) => {
      const old = await h.portal("up");
      const space = (await spaceOf(h, "network"))!;
      const next = h.hs.createRoomDirect(ALICE);
      h.hs.rooms.get(next)!.state.set("m.room.create\0", {
        event_id: "$c",
        room_id: next,
        type: "m.room.create",
        sender: ALICE,
        state_key: "",
        content: { predecessor: { room_id: old.roomId } },
        origin_server_ts: 1,
      });
      await h.push([
        {
          type: "m.room.tombstone",
          room_id: old.roomId,
          sender: ALICE,
          state_key: "",
          content: { replacement_room: next },
        },
      ]);
      for (let i = 0; i < 200 && h.hs.rooms.get(old.roomId)!.members.get(BOT) !== "leave"; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(children(h, space), [next]);
      assert.deepEqual(stateOf(h, next, "m.space.parent", space), { via: [DOMAIN], canonical: true });
    });
  });
});
