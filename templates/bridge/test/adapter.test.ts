/**
 * The adapter, tested THROUGH THE FRAMEWORK: a real matrix-bridgekit Bridge, configured by
 * config.example.yaml, runs against an in-process fake homeserver (matrix-bridgekit/testing), and the
 * in-memory network plays the remote side. Each test acts on one side and checks the other.
 *
 * When you replace the in-memory network with the real one, keep these tests by giving the
 * real client a fake server, or move them to an integration suite against the real network.
 */
import { describe, before, after, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../src/adapter.js";
import { eventually, MATRIX_USER, push, startBridge, stopBridge, type Running } from "./harness.js";

describe("{{name}} adapter through the bridge", () => {
  let r: Running;
  before(async () => {
    r = await startBridge({ rooms: ["lobby"], echoUser: null });
  });
  after(async () => {
    await stopBridge(r);
  });

  it("bridges a remote message into a portal made on demand, from the sender's ghost", async () => {
    r.network.addUser("bob", "Bob");
    r.remote.join("lobby", "bob");
    const id = r.remote.post("lobby", "bob", "hello from {{network}}");
    const portal = await eventually(() => r.hs.roomByAlias("#{{prefix}}lobby:{{domain}}"), "the portal");
    await eventually(
      () =>
        r.hs.events(portal.roomId, "m.room.message").find((e) => e.content.body === "hello from {{network}}"),
      "the message in the portal",
    );
    await r.bridge.flush();
    const [message] = r.hs.events(portal.roomId, "m.room.message");
    assert.equal(message?.sender, "@{{prefix}}bob:{{domain}}");
    assert.equal(r.hs.profiles.get("@{{prefix}}bob:{{domain}}")?.displayname, "Bob");
    assert.equal(portal.state.get("m.room.name\0")?.content.name, "lobby");
    assert.ok(id);
  });

  it("relays a Matrix message, reply, edit, reaction and redaction to the network", async () => {
    const portal = (await r.bridge.portals.get("lobby"))!;
    assert.equal(
      await push(r, [
        {
          type: "m.room.member",
          room_id: portal.roomId,
          state_key: MATRIX_USER,
          content: { membership: "join" },
        },
        {
          event_id: "$hi-bob",
          type: "m.room.message",
          room_id: portal.roomId,
          content: { msgtype: "m.text", body: "hi bob" },
        },
      ]),
      200,
    );
    assert.ok(r.network.room("lobby")!.members.has(MATRIX_USER), "the Matrix user joined on the network");
    const sent = r.network.messages("lobby").find((m) => m.text === "hi bob");
    assert.equal(sent?.from, MATRIX_USER);

    const matrixEventId = "$hi-bob";
    assert.equal(
      await push(r, [
        {
          type: "m.room.message",
          room_id: portal.roomId,
          content: {
            msgtype: "m.text",
            body: "hi again",
            "m.new_content": { msgtype: "m.text", body: "hi again, bob" },
            "m.relates_to": { rel_type: "m.replace", event_id: matrixEventId },
          },
        },
      ]),
      200,
    );
    assert.equal(r.network.messages("lobby").find((m) => m.id === sent.id)?.text, "hi again, bob");

    assert.equal(
      await push(r, [
        {
          type: "m.reaction",
          room_id: portal.roomId,
          content: { "m.relates_to": { rel_type: "m.annotation", event_id: matrixEventId, key: "👍" } },
        },
      ]),
      200,
    );
    const reaction = r.network.messages("lobby").find((m) => m.text === "👍" && m.replyTo === sent.id);
    assert.ok(reaction, "the reaction reached the network");

    assert.equal(
      await push(r, [
        { type: "m.room.redaction", room_id: portal.roomId, redacts: matrixEventId, content: {} },
      ]),
      200,
    );
    assert.equal(
      r.network.messages("lobby").find((m) => m.id === sent.id),
      undefined,
      "the message was deleted",
    );
  });

  it("bridges remote edits, reactions and deletions as Matrix relations", async () => {
    const portal = (await r.bridge.portals.get("lobby"))!;
    const id = r.remote.post("lobby", "bob", "tpyo");
    r.remote.edit("lobby", "bob", id, "typo");
    r.remote.react("lobby", "bob", id, "🎉");
    r.remote.remove("lobby", "bob", id);
    const redaction = await eventually(
      () => r.hs.events(portal.roomId, "m.room.redaction")[0],
      "the redaction",
    );
    await r.bridge.flush();
    const original = r.hs.events(portal.roomId, "m.room.message").find((e) => e.content.body === "tpyo");
    assert.ok(original, "the original message");
    const edit = r.hs.events(portal.roomId, "m.room.message").find((e) => {
      const rel = e.content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined;
      return rel?.rel_type === "m.replace" && rel.event_id === original.event_id;
    });
    assert.equal((edit?.content["m.new_content"] as { body?: string } | undefined)?.body, "typo");
    const reaction = r.hs.events(portal.roomId, "m.reaction")[0];
    assert.deepEqual(reaction?.content["m.relates_to"], {
      rel_type: "m.annotation",
      event_id: original.event_id,
      key: "🎉",
    });
    assert.equal(redaction.content.redacts, original.event_id);
  });

  it("answers the homeserver's user and alias queries from the network", async () => {
    const query = (path: string) =>
      fetch(`http://127.0.0.1:${r.bridge.listeningPort}${path}`, {
        headers: { Authorization: `Bearer ${r.registration.hs_token}` },
      }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      });
    r.network.addUser("carol", "Carol");
    assert.equal(
      await query(`/_matrix/app/v1/users/${encodeURIComponent("@{{prefix}}carol:{{domain}}")}`),
      200,
    );
    assert.equal(
      await query(`/_matrix/app/v1/users/${encodeURIComponent("@{{prefix}}nobody:{{domain}}")}`),
      404,
    );
    r.network.addRoom("dev", { name: "Developers", topic: "code talk" });
    assert.equal(
      await query(`/_matrix/app/v1/rooms/${encodeURIComponent("#{{prefix}}dev:{{domain}}")}`),
      200,
    );
    const dev = r.hs.roomByAlias("#{{prefix}}dev:{{domain}}");
    assert.equal(dev?.state.get("m.room.topic\0")?.content.topic, "code talk");
    assert.equal(
      await query(`/_matrix/app/v1/rooms/${encodeURIComponent("#{{prefix}}nowhere:{{domain}}")}`),
      404,
    );
  });

  it("maps third-party URIs and lookups to ghosts and portals", () => {
    assert.equal(r.adapter.userFromUri(new URL("{{network}}://user/bob")), "bob");
    assert.equal(r.adapter.roomFromUri(new URL("{{network}}://room/lobby")), "lobby");
    assert.equal(r.adapter.roomFromUri(new URL("other://room/lobby")), null);
  });
});

describe("{{name}} demo echo user", () => {
  it("answers a Matrix message through its ghost", async () => {
    const r = await startBridge({ rooms: ["lobby"] });
    try {
      const portal = await r.bridge.portals.ensure("lobby");
      assert.equal(
        await push(r, [
          { type: "m.room.message", room_id: portal.roomId, content: { msgtype: "m.text", body: "ping" } },
        ]),
        200,
      );
      const echo = await eventually(
        () =>
          r.hs.events(portal.roomId, "m.room.message").find((e) => e.sender === "@{{prefix}}echo:{{domain}}"),
        "the echo",
      );
      assert.equal(echo.content.body, "ping");
    } finally {
      await stopBridge(r);
    }
  });
});

describe("adapter config", () => {
  it("rejects bad values, naming the key", () => {
    assert.throws(() => parseConfig({ rooms: "lobby" }), /adapter\.config\.rooms/);
    assert.throws(() => parseConfig({ echoUser: 3 }), /adapter\.config\.echoUser/);
    assert.throws(() => parseConfig({ accounts: { alice: 1 } }), /adapter\.config\.accounts\.alice/);
    assert.deepEqual(parseConfig(undefined), { rooms: ["lobby"], echoUser: "echo", accounts: {} });
  });
});
