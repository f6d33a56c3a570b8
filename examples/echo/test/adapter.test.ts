import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { silentLogger } from "matrix-bridgekit";
import createEcho from "../src/adapter.js";
import { RecordingContext, testCall } from "../../../test/support/recording-context.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";

function message(body: string, msgtype = "m.text") {
  const raw: MatrixEvent = {
    event_id: "$1",
    type: "m.room.message",
    room_id: "!r:example.org",
    sender: "@alice:example.org",
    origin_server_ts: 5000,
    content: { msgtype, body },
  };
  return {
    eventId: "$1",
    sender: { userId: "@alice:example.org", displayName: "Alice" },
    ts: 5000,
    msgtype,
    body,
    raw,
  };
}

describe("echo adapter", () => {
  it("answers a text message from the sender's echo ghost, 1 ms later", async () => {
    const adapter = await createEcho({ config: undefined, log: silentLogger(), configDir: "." });
    const ctx = new RecordingContext({ ghosts: "echo_{id}", portals: "echo_{id}" });
    await adapter.start(ctx);
    await adapter.onMessage!(message("hello"), ctx.portal("lobby"), testCall());
    const send = ctx.calls.find((c) => c.method === "send");
    assert.ok(send);
    assert.equal(send.room, "lobby");
    assert.equal(send.from, "alice");
    assert.deepEqual(send.args, ["echo: hello", { ts: 5001, remoteId: "echo-$1" }]);
    assert.equal(ctx.ghosts.userId(send.from), "@echo_alice:example.org");
    const profile = ctx.calls.find((c) => c.method === "setProfile");
    assert.deepEqual(profile?.args, [{ displayName: "echo of Alice" }]);
  });

  it("ignores non-text messages and uses a configured prefix", async () => {
    const adapter = await createEcho({ config: { prefix: "> " }, log: silentLogger(), configDir: "." });
    const ctx = new RecordingContext();
    await adapter.start(ctx);
    await adapter.onMessage!(message("pic.png", "m.image"), ctx.portal("x"), testCall());
    assert.equal(ctx.calls.filter((c) => c.method === "send").length, 0);
    await adapter.onMessage!(message("hi"), ctx.portal("x"), testCall());
    assert.equal(ctx.calls.find((c) => c.method === "send")?.args[0], "> hi");
  });

  it("says every room and user exists, and rejects a bad prefix", async () => {
    const adapter = await createEcho({ config: null, log: silentLogger(), configDir: "." });
    assert.equal((await adapter.queryRoom!("anything", testCall()))?.visibility, "public");
    assert.ok(await adapter.queryUser!("bob", testCall()));
    assert.throws(
      () => createEcho({ config: { prefix: 3 as unknown as string }, log: silentLogger(), configDir: "." }),
      /prefix must be a string/,
    );
  });
});
