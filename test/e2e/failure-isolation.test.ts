// One bad event never stalls the bridge, on a real Synapse with `bridgekit start`: an adapter
// that always throws on one message; a message in another portal is bridged within seconds;
// the failing room moves on after its retry budget; the sender gets a notice replying to the
// event; the dead letter is listed by `bridgekit dead-letters`, survives a restart, and a
// retry from the CLI delivers it once the adapter is fixed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadRegistration, type Registration } from "../../src/registration/index.js";
import { REPO_ROOT, runBridgekit, startBridgeProcess, type BridgeProcess } from "./support/bridge-process.js";
import { freePort, startSynapse, type SynapseInstance, type TestUser } from "./support/synapse.js";

const DOMAIN = "localhost";
const ADAPTER = join(REPO_ROOT, "test", "e2e", "support", "flaky-adapter.ts");
const ECHO_GHOST = `@flaky_echo:${DOMAIN}`;

interface RoomEvent {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
}

describe("failure isolation through Synapse: a failing event never stalls the bridge", () => {
  let dir: string;
  let config: string;
  let fixedFile: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  let alice: TestUser;
  const rooms: Record<string, string> = {};
  let poisonId = "";

  const writeConfig = (hsUrl: string) =>
    writeFile(
      config,
      [
        `homeserver: { url: "${hsUrl}", domain: ${DOMAIN} }`,
        `appservice: { host: 127.0.0.1, port: ${port} }`,
        "store: sqlite://data/flaky.db",
        "bridge: { ghosts: 'flaky_{id}', portals: 'flaky_{id}' }",
        "inbox: { retry: { firstDelayMs: 500, unexpectedAttempts: 3 } }",
        `adapter: { module: "${ADAPTER}", config: { fixedFile: "${fixedFile}" } }`,
        "client: { retryAttempts: 4, maxBackoffMs: 500 }",
      ].join("\n"),
    );

  async function cs(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${synapse!.url}/_matrix/client/v3${path}`, {
      method,
      headers: { Authorization: `Bearer ${alice.accessToken}`, "Content-Type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  let txn = 0;
  const say = async (room: string, body: string) =>
    (
      await cs(
        "PUT",
        `/rooms/${encodeURIComponent(rooms[room]!)}/send/m.room.message/f-${Date.now()}-${++txn}`,
        {
          msgtype: "m.text",
          body,
        },
      )
    ).event_id as string;

  async function messages(room: string): Promise<RoomEvent[]> {
    const r = await cs("GET", `/rooms/${encodeURIComponent(rooms[room]!)}/messages?dir=b&limit=100`);
    return (r.chunk as RoomEvent[]).filter((e) => e.type === "m.room.message").reverse();
  }

  async function waitFor(room: string, match: (e: RoomEvent) => boolean, what: string, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await messages(room)).find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `${what} not seen within ${timeoutMs} ms\n${bridge?.stdout().slice(-4000)}\n${bridge?.stderr()}`,
        );
      await sleep(200);
    }
  }

  const deadLetters = async () => {
    const r = await runBridgekit(["dead-letters", "list", "--json", "--config", config]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Array<{ id: string; reason: string; attempts: number }>;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-flaky-"));
    config = join(dir, "config.yaml");
    fixedFile = join(dir, "fixed");
    port = await freePort();
    await writeConfig("http://127.0.0.1:1");
    const gen = await runBridgekit(["generate-registration", "--config", config]);
    assert.equal(gen.code, 0, gen.stderr);
    reg = await loadRegistration(join(dir, "registration.yaml"));
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    await writeConfig(synapse.url);
    alice = await synapse.registerUser("alice");
    bridge = await startBridgeProcess(config);
    for (const room of ["a", "b"]) {
      rooms[room] = (await cs("POST", `/join/${encodeURIComponent(`#flaky_${room}:${DOMAIN}`)}`, {}))
        .room_id as string;
    }
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a message in another portal is bridged within seconds while one event keeps failing", async () => {
    poisonId = await say("a", "poison pill");
    await sleep(1_500);
    const sent = Date.now();
    await say("b", "hello from b");
    await waitFor(
      "b",
      (e) => e.sender === ECHO_GHOST && e.content.body === "echo: hello from b",
      "the echo in b",
      10_000,
    );
    const took = Date.now() - sent;
    assert.ok(took < 10_000, `bridged in ${took} ms`);
  });

  it("the failing room moves on after its retry budget, and the sender is told in a reply", async () => {
    await say("a", "after the bad one");
    await waitFor(
      "a",
      (e) => e.sender === ECHO_GHOST && e.content.body === "echo: after the bad one",
      "the next echo in a",
    );
    const notice = await waitFor(
      "a",
      (e) => e.sender === `@${reg.sender_localpart}:${DOMAIN}` && e.content.msgtype === "m.notice",
      "the notice",
    );
    assert.match(String(notice.content.body), /^not bridged: the bridge could not deliver it \(3 tries\)$/);
    assert.deepEqual(
      (notice.content["m.relates_to"] as Record<string, unknown>)["m.in_reply_to"],
      { event_id: poisonId },
      "the notice replies to the failed event",
    );
    assert.deepEqual((notice.content["m.mentions"] as { user_ids: string[] }).user_ids, [alice.userId]);
    assert.doesNotMatch(
      String(notice.content.body),
      /TypeError|poison'|at /,
      "no error text or stack trace in the room",
    );
    const order = (await messages("a")).map((e) => String(e.content.body));
    assert.ok(
      order.indexOf("poison pill") < order.indexOf("after the bad one"),
      "the room's events stayed in order",
    );
  });

  it("the dead letter is listed by the CLI, and survives a restart (listed from the store while stopped)", async () => {
    const running = await deadLetters();
    assert.deepEqual(
      running.map((l) => [l.id, l.reason, l.attempts]),
      [[poisonId, "exhausted", 3]],
    );
    assert.deepEqual(await bridge!.stop(), { code: 0, signal: null });
    const stopped = await runBridgekit(["dead-letters", "list", "--config", config]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /^1 dead letter in the store sqlite:/);
    assert.ok(stopped.stdout.includes(poisonId));
    bridge = await startBridgeProcess(config);
    assert.deepEqual(
      (await deadLetters()).map((l) => l.id),
      [poisonId],
    );
  });

  it("once the adapter is fixed, a retry from the CLI delivers it and the dead letter is gone", async () => {
    await writeFile(fixedFile, "fixed");
    const retry = await runBridgekit(["dead-letters", "retry", poisonId, "--config", config]);
    assert.equal(retry.code, 0, retry.stdout + retry.stderr);
    assert.match(retry.stdout, /retrying /);
    await waitFor(
      "a",
      (e) => e.sender === ECHO_GHOST && e.content.body === "echo: poison pill",
      "the retried echo",
    );
    for (let i = 0; i < 50 && (await deadLetters()).length > 0; i++) await sleep(100);
    assert.deepEqual(await deadLetters(), []);
    for (const text of [bridge!.stdout(), bridge!.stderr()]) {
      assert.ok(!text.includes(reg.as_token) && !text.includes(reg.hs_token), "no token in the logs");
    }
  });
});
