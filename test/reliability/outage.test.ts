// Homeserver outage while the adapter sends: the homeserver's port really closes (a TCP proxy
// in front of the fake homeserver goes down: resets, then refusals), answers 502 and resets
// connections, and accepts sends whose answers are then lost. The adapter's sends keep
// resolving (they are stored); once the homeserver is back every message arrives, in order
// per room, none twice.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import { generateRegistration } from "../../src/registration/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { DOMAIN, TestAdapter, testConfig } from "../support/bridge-harness.js";
import { FakeHomeserver } from "../support/fake-homeserver.js";
import { scratchRoot } from "./support/bridge-files.js";
import { sleep } from "./support/random.js";
import { TcpProxy } from "./support/tcp-proxy.js";

const ROOMS = ["lobby", "dev", "random"];
const SENDERS = ["alice", "bob", "carol", "dave"];

describe("homeserver outage", { timeout: 120_000 }, () => {
  let hs: FakeHomeserver;
  let proxy: TcpProxy;
  let store: Store;
  let bridge: Bridge;
  let dir: string;
  const adapter = new TestAdapter();
  let next = 0;
  const sentAt = new Map<number, string>(); // message number -> phase it was sent in

  before(async () => {
    const registration = generateRegistration({
      id: "test",
      url: "http://127.0.0.1:1",
      domain: DOMAIN,
      senderLocalpart: "bot",
      ghosts: "test_{id}",
      portals: "test_{id}",
    });
    hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    proxy = await TcpProxy.start(Number(new URL(hs.url).port));
    dir = await mkdtemp(join(scratchRoot(), "bk-rel-outage-"));
    store = await openStore(`sqlite://${join(dir, "bridge.db")}`);
    const config = testConfig(proxy.url);
    config.client = { concurrency: 10, retryAttempts: 2, maxBackoffMs: 20, requestTimeoutMs: 2000 };
    bridge = new Bridge({
      config,
      registration,
      adapter,
      store,
      logger: silentLogger(),
      outboxRetry: { minDelayMs: 10, maxDelayMs: 200 },
    });
    await bridge.start();
    for (const room of ROOMS) await adapter.ctx!.portals.ensure(room);
  });

  after(async () => {
    await bridge.stop();
    await store.close();
    await proxy.down();
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Sends `n` numbered messages round-robin; each resolve means it is stored (accepted). */
  async function sendMessages(n: number, phase: string): Promise<void> {
    for (let k = 0; k < n; k++, next++) {
      const i = next;
      await adapter.ctx!.send(ROOMS[i % ROOMS.length]!, SENDERS[i % SENDERS.length]!, `outage #${i}`);
      sentAt.set(i, phase);
    }
  }

  const delivered = () =>
    ROOMS.map((remote) => {
      const roomId = hs.aliases.get(`#test_${remote}:${DOMAIN}`)!;
      return hs.rooms
        .get(roomId)!
        .timeline.flatMap((e) => {
          const body = e.content.body;
          return (typeof body === "string" && /^outage #(\d+)$/.exec(body)?.[1]) || [];
        })
        .map(Number);
    });

  it("port closed: sends are accepted while it is down and all arrive when it is back", async () => {
    await proxy.down();
    await sendMessages(60, "port closed");
    await sleep(700); // deliveries fail against the closed port and back off
    assert.deepEqual(delivered().flat(), [], "nothing can arrive while the port is closed");
    await proxy.up();
    await bridge.flush();
    assert.equal(delivered().flat().length, 60);
  });

  it("502s and connection resets from the homeserver, then it recovers", async () => {
    hs.script({ method: "PUT", path: /\/send\// }, { status: 502, body: { error: "bad gateway" } }, 25);
    hs.script({ method: "PUT", path: /\/send\// }, { status: 0, destroy: true }, 15);
    hs.script({ method: "POST", path: /\/register$/ }, { status: 502, body: {} }, 3);
    await sendMessages(60, "502s and resets");
    await bridge.flush();
    hs.clearScripts();
  });

  it("accepted by the homeserver but the answer lost: resent with the same txnId, stored once", async () => {
    proxy.dropResponses = true;
    await sendMessages(30, "answers lost");
    await sleep(500);
    proxy.dropResponses = false;
    await bridge.flush();
    assert.ok(proxy.dropped > 0, "some answers were dropped");
  });

  it("the port closes and reopens again and again while sends are in flight", async () => {
    const flapping = (async () => {
      for (let k = 0; k < 6; k++) {
        await sleep(80);
        await proxy.down();
        await sleep(150);
        await proxy.up();
      }
    })();
    await sendMessages(90, "flapping");
    await flapping;
    await bridge.flush();
  });

  it("every accepted message arrived, in order per room, none twice", (t) => {
    const rooms = delivered();
    const all = rooms.flat();
    const counts = new Map<number, number>();
    for (const n of all) counts.set(n, (counts.get(n) ?? 0) + 1);
    const lost = [...sentAt.keys()].filter((n) => !counts.has(n));
    const twice = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
    const disorder = rooms.flatMap((list, r) =>
      list.flatMap((n, i) => (i > 0 && n <= list[i - 1]! ? [`room ${r}: #${n} after #${list[i - 1]}`] : [])),
    );
    const sends = hs.requestsTo("PUT", /\/send\/m\.room\.message\//);
    const failed = sends.length - all.length;
    t.diagnostic(
      `outage: ${sentAt.size} messages accepted over ${ROOMS.length} rooms through 4 outages; ` +
        `${sends.length} send requests reached the homeserver (${failed} refused, reset or repeated), ` +
        `${proxy.dropped} answers lost after the homeserver stored the event; arrived ${all.length}; ` +
        `lost ${lost.length}; duplicated ${twice.length}; order violations ${disorder.length}`,
    );
    assert.deepEqual(lost, [], "accepted messages that never arrived");
    assert.deepEqual(twice, [], "messages that arrived twice");
    assert.deepEqual(disorder, [], "per-room order");
    assert.equal(all.length, sentAt.size);
  });
});
