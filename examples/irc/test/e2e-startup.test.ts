/**
 * Start-up ordering of the IRC adapter against a real ngircd. The bridge listens (and the
 * homeserver pushes) before the adapter has connected, e.g. a transaction Synapse kept while
 * the bridge was down arrives at once after a restart; the end-to-end test met this as a
 * "the IRC adapter is not started" failure. Matrix events and queries that arrive while
 * start() runs wait for it instead of failing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { silentLogger, type MatrixEvent, type MatrixMessage } from "matrix-bridgekit";
import factory, { type IrcAdapter, type IrcConfig } from "../src/adapter.js";
import { RecordingContext } from "../../../test/support/recording-context.js";
import { Ngircd } from "./ngircd.js";
import { RawIrcClient } from "./raw-client.js";

const BOT = "StartBot";

function message(body: string): MatrixMessage {
  const raw: MatrixEvent = {
    event_id: `$${body}`,
    type: "m.room.message",
    room_id: "!r:example.org",
    sender: "@bob:example.org",
    origin_server_ts: Date.now(),
    content: { msgtype: "m.text", body },
  };
  return {
    eventId: raw.event_id,
    sender: { userId: raw.sender, displayName: "Bob" },
    ts: raw.origin_server_ts,
    msgtype: "m.text",
    body,
    raw,
  };
}

async function makeAdapter(port: number, timeoutMs: number): Promise<IrcAdapter> {
  const config: IrcConfig = { server: "127.0.0.1", port, nick: BOT, timeoutMs, reconnectDelayMs: 100 };
  return (await factory({ config, log: silentLogger(), configDir: "." })) as IrcAdapter;
}

describe("IRC adapter: events that arrive while start() runs", () => {
  let server: Ngircd;
  let frank: RawIrcClient;
  const adapters: IrcAdapter[] = [];

  before(async () => {
    server = await Ngircd.start();
    frank = await RawIrcClient.connect(server.port, "Frank");
    await frank.join("#early");
  });

  after(async () => {
    for (const a of adapters) await a.stop();
    frank?.destroy();
    await server?.stop();
  });

  it("a Matrix message and the queries given before start() wait for it, then succeed", async () => {
    const adapter = await makeAdapter(server.port, 10_000);
    adapters.push(adapter);
    const ctx = new RecordingContext({ ghosts: "irc_{id}", portals: "irc_{id}" });
    // Called before start(): before this fix they threw "the IRC adapter is not started".
    const sent = adapter.onMessage(message("sent before start"), ctx.portal("early"));
    const user = adapter.queryUser("frank");
    const room = adapter.queryRoom("early");
    let settled = false;
    void Promise.allSettled([sent, user, room]).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(settled, false, "the handlers did not wait for start()");

    await adapter.start(ctx);
    await sent;
    const line = await frank.waitFor((l) => l.command === "PRIVMSG" && l.nick === BOT);
    assert.deepEqual(line.params, ["#early", "<Bob> sent before start"]);
    assert.deepEqual(await user, { displayName: "Frank" });
    const spec = await room;
    assert.equal(spec?.name, "#early");
    assert.deepEqual(spec?.members, ["frank"]);
  });

  it("without a start the wait is bounded by timeoutMs and ends in a clear error", async () => {
    const adapter = await makeAdapter(server.port, 300);
    const notStarted =
      /^Error: not connected to IRC server 127\.0\.0\.1:\d+: the adapter did not start within 300 ms$/;
    await assert.rejects(
      adapter.onMessage(message("never sent"), { remoteId: "early", roomId: "!r:x" }),
      notStarted,
    );
    await assert.rejects(adapter.queryUser("frank"), notStarted);
  });
});
