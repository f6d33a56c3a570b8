// The echo bridge end to end: a real Synapse, the registration from `bridgekit generate-registration`,
// and `bridgekit start` as a child process. A Matrix user, through the plain client-server API,
// joins #echo_lobby, says hello and gets the ghost's echo; a restart keeps working without
// registering or joining anyone again; `bridgekit ping` tells a running bridge from a stopped one.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Registration } from "../../src/registration/index.js";
import {
  runBridgekit,
  startBridgeProcess,
  type BridgeProcess,
  type LogLine,
} from "./support/bridge-process.js";
import { prepareEchoBridgeFiles } from "./support/echo-bridge-files.js";
import { freePort, startSynapse, type SynapseInstance, type TestUser } from "./support/synapse.js";

const DOMAIN = "localhost";

interface RoomEvent {
  event_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
}

describe("the echo bridge through Synapse (bridgekit start as a child process)", () => {
  let dir: string;
  let config: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  let alice: TestUser;
  let roomId: string;
  const ghost = `@echo_alice:${DOMAIN}`;

  let pointAt: (hsUrl: string) => Promise<void>;

  /** A client-server call as a user (or as the appservice with `asUser`). */
  async function cs(
    method: string,
    path: string,
    o: { token?: string; asUser?: string; body?: unknown } = {},
  ): Promise<Record<string, unknown>> {
    const url = new URL(`${synapse!.url}/_matrix/client/v3${path}`);
    if (o.asUser !== undefined) url.searchParams.set("user_id", o.asUser);
    const res = await fetch(url, {
      method,
      headers: {
        Authorization: `Bearer ${o.token ?? alice.accessToken}`,
        "Content-Type": "application/json",
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}\n${synapse!.logTail(20)}`);
    return json;
  }

  let txn = 0;
  const say = async (body: string, o: { token?: string; asUser?: string } = {}) =>
    (
      await cs("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/e2e-${Date.now()}-${++txn}`, {
        ...o,
        body: { msgtype: "m.text", body },
      })
    ).event_id as string;

  async function messages(): Promise<RoomEvent[]> {
    const r = await cs("GET", `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`);
    return (r.chunk as RoomEvent[]).filter((e) => e.type === "m.room.message").reverse();
  }

  async function waitForMessage(sender: string, body: string, timeoutMs = 30_000): Promise<RoomEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await messages()).find((e) => e.sender === sender && e.content.body === body);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `no "${body}" from ${sender} within ${timeoutMs} ms\n--- bridge stdout ---\n${bridge?.stdout().slice(-3000)}\n--- bridge stderr ---\n${bridge?.stderr()}\n${synapse!.logTail(20)}`,
        );
      }
      await sleep(200);
    }
  }

  /** The homeserver requests a bridge run made, from its debug log ("POST /_matrix/client/v3/register"). */
  const requests = (logs: LogLine[]) =>
    logs
      .filter(
        (l) =>
          l.part === "client" &&
          (l.msg === "homeserver request done" || l.msg === "homeserver request failed"),
      )
      .map((l) => String(l.request));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-echo-"));
    port = await freePort();
    const files = await prepareEchoBridgeFiles({ dir, domain: DOMAIN, port });
    ({ configPath: config, registration: reg, pointAt } = files);
    assert.equal(reg.url, `http://127.0.0.1:${port}`, "the registration points at the bridge's port");
    assert.equal(reg.rate_limited, false, "the bridge is not rate limited");
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    await pointAt(synapse.url);
    alice = await synapse.registerUser("alice");
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("bridgekit ping passes once the bridge runs", async () => {
    bridge = await startBridgeProcess(config, { env: { BRIDGEKIT_LOGGING_LEVEL: "debug" } });
    const r = await runBridgekit(["ping", "--config", config]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok +homeserver: /m);
    assert.match(r.stdout, /^ok +as_token: accepted: the bot is @echobot:localhost$/m);
    assert.match(
      r.stdout,
      /^ok +homeserver -> bridge: the homeserver reached the bridge at http:\/\/127\.0\.0\.1:\d+ in \d+ ms$/m,
    );
    await bridge.waitForLog((l) => l.msg === "pinged by the homeserver");
  });

  it("joining #echo_lobby creates the portal; hello is echoed by the ghost at ts + 1 with its display name", async () => {
    await cs("PUT", `/profile/${encodeURIComponent(alice.userId)}/displayname`, {
      body: { displayname: "Alice Liddell" },
    });
    const joined = await cs("POST", `/join/${encodeURIComponent(`#echo_lobby:${DOMAIN}`)}`, { body: {} });
    roomId = joined.room_id as string;
    assert.match(roomId, /^!/);
    const helloId = await say("hello");
    const hello = (await cs(
      "GET",
      `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(helloId)}`,
    )) as unknown as RoomEvent;
    const echo = await waitForMessage(ghost, "echo: hello");
    assert.equal(echo.origin_server_ts, hello.origin_server_ts + 1, "timestamp massaging: original + 1 ms");
    const profile = await cs("GET", `/profile/${encodeURIComponent(ghost)}/displayname`);
    assert.equal(profile.displayname, "echo of Alice Liddell");
    const state = await cs("GET", `/rooms/${encodeURIComponent(roomId)}/state/m.room.name/`);
    assert.equal(state.name, "Echo lobby", "the portal was made from the adapter's queryRoom");
  });

  it("the bot's and the ghost's own messages are not echoed", async () => {
    await say("from the bot", { token: reg.as_token });
    await say("from the ghost itself", { token: reg.as_token, asUser: ghost });
    // Events of a room reach the bridge in order and the echo outbox is per-room FIFO, so
    // once the echo of a later message is in, the two above were seen and not echoed.
    await say("barrier");
    await waitForMessage(ghost, "echo: barrier");
    await sleep(2000); // and a little more, for an echo of an echo that would come late
    const bodies = (await messages()).map(
      (e) => `${e.sender === alice.userId ? "alice" : e.sender}: ${String(e.content.body)}`,
    );
    assert.deepEqual(bodies, [
      "alice: hello",
      `${ghost}: echo: hello`,
      "@echobot:localhost: from the bot",
      `${ghost}: from the ghost itself`,
      "alice: barrier",
      `${ghost}: echo: barrier`,
    ]);
  });

  it("a restart (SIGTERM, start again, same store) keeps working and registers or joins nobody again", async () => {
    const first = requests(bridge!.logs());
    assert.ok(
      first.some((r) => r === "POST /_matrix/client/v3/register"),
      `the first run registered the ghost (so the count below can see registrations): ${first.join(", ")}`,
    );
    assert.ok(
      first.some((r) => /\/join\//.test(r)),
      "the first run joined the ghost",
    );
    const exit = await bridge!.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, bridge!.stderr());

    bridge = await startBridgeProcess(config, { env: { BRIDGEKIT_LOGGING_LEVEL: "debug" } });
    await say("after the restart");
    await waitForMessage(ghost, "echo: after the restart");
    const second = requests(bridge.logs());
    assert.ok(
      second.some((r) => /\/send\/m\.room\.message\//.test(r)),
      "the second run's requests are counted",
    );
    const again = second.filter((r) => /\/register$|\/join\/|\/invite$|\/createRoom$/.test(r));
    assert.deepEqual(again, [], "no registration, join, invite or room creation after the restart");
  });

  it("bridgekit ping explains a stopped bridge", async () => {
    assert.deepEqual(await bridge!.stop(), { code: 0, signal: null });
    const r = await runBridgekit(["ping", "--config", config]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ok +as_token: /m);
    assert.match(
      r.stdout,
      /^FAIL +homeserver -> bridge: the homeserver cannot connect to the bridge at http:\/\/127\.0\.0\.1:\d+ \(M_CONNECTION_FAILED: .*\): the bridge is not running/m,
    );
    for (const text of [r.stdout, r.stderr, bridge!.stdout(), bridge!.stderr()]) {
      assert.ok(!text.includes(reg.as_token) && !text.includes(reg.hs_token), "no token in any output");
    }
  });
});
