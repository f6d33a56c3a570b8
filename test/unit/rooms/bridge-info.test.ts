import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bridgeInfoStateKey, infoSection } from "../../../src/rooms/bridge-info.js";
import { TestAdapter, withHarness, DOMAIN } from "../../support/bridge-harness.js";
import type { FakeHomeserver } from "../../support/fake-homeserver.js";

const state = (hs: FakeHomeserver, roomId: string, type: string, stateKey: string) =>
  hs.rooms.get(roomId)!.state.get(`${type}\0${stateKey}`)?.content;

class DescribedAdapter extends TestAdapter {
  readonly bridgeInfo = {
    protocol: { displayName: "Test Chat", externalUrl: "https://test.example" },
    network: { id: "main", displayName: "Main server" },
    room: (remoteId: string) => ({ externalUrl: `https://test.example/r/${remoteId}` }),
  };
}

describe("bridge info (MSC2346)", () => {
  it("names the bridge, protocol, network and room in the state key, each part encoded", () => {
    assert.equal(bridgeInfoStateKey("test", "irc", "libera", "#chat"), "test://irc/libera/%23chat");
    assert.equal(bridgeInfoStateKey("test", "irc", undefined, "a/b"), "test://irc/a%2Fb");
  });

  it("writes sections in the MSC's field names and leaves empty ones out", () => {
    assert.deepEqual(infoSection({ id: "x", displayName: "X", externalUrl: "https://x" }, "mxc://a/b"), {
      id: "x",
      displayname: "X",
      avatar_url: "mxc://a/b",
      external_url: "https://x",
    });
    assert.deepEqual(infoSection({ id: "x", displayName: "" }), { id: "x" });
  });

  it("puts m.bridge and uk.half-shot.bridge in a new portal and updates both when the name changes", async () => {
    await withHarness(
      async (h) => {
        const portal = await h.portal("chan");
        const key = "test://test/main/chan";
        const expected = {
          bridgebot: `@bot:${DOMAIN}`,
          protocol: { id: "test", displayname: "Test Chat", external_url: "https://test.example" },
          network: { id: "main", displayname: "Main server" },
          channel: { id: "chan", displayname: "Room chan", external_url: "https://test.example/r/chan" },
        };
        assert.deepEqual(state(h.hs, portal.roomId, "m.bridge", key), expected);
        assert.deepEqual(state(h.hs, portal.roomId, "uk.half-shot.bridge", key), expected);

        await h.adapter.ctx!.setRoomInfo("chan", { name: "Renamed", topic: "t" });
        await h.bridge.flush();
        const renamed = { ...expected, channel: { ...expected.channel, displayname: "Renamed" } };
        assert.deepEqual(state(h.hs, portal.roomId, "m.bridge", key), renamed);
        assert.deepEqual(state(h.hs, portal.roomId, "uk.half-shot.bridge", key), renamed);
      },
      { adapter: new DescribedAdapter() },
    );
  });

  it("without a description, the protocol is the adapter's name, and a topic change leaves the info alone", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("plain");
      const key = "test://test/plain";
      assert.deepEqual(state(h.hs, portal.roomId, "m.bridge", key), {
        bridgebot: `@bot:${DOMAIN}`,
        protocol: { id: "test" },
        channel: { id: "plain", displayname: "Room plain" },
      });
      const before = h.hs.requests.filter((r) => r.path.includes("/state/m.bridge/")).length;
      await h.adapter.ctx!.setRoomInfo("plain", { topic: "only the topic" });
      await h.bridge.flush();
      assert.equal(h.hs.requests.filter((r) => r.path.includes("/state/m.bridge/")).length, before);
    });
  });

  it("a room left by a crashed creation (its alias taken) gets the bridge info when it is adopted", async () => {
    await withHarness(async (h) => {
      const roomId = h.hs.createRoomDirect(`@bot:${DOMAIN}`);
      h.hs.aliases.set(`#test_crashed:${DOMAIN}`, roomId);
      const portal = await h.portal("crashed");
      assert.equal(portal.roomId, roomId);
      assert.equal(
        (state(h.hs, roomId, "m.bridge", "test://test/crashed")?.channel as { id?: string }).id,
        "crashed",
      );
    });
  });
});
