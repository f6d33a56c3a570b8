// One writer per store, through the Bridge: a second bridge on the same sqlite file refuses to
// start (after waiting out a dead holder's lease), a standby waits and takes over once the
// first stops, and a bridge without the lease writes nothing.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Bridge } from "../../../src/bridge/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import { LeaseHeldError, openStore, type Store } from "../../../src/store/index.js";
import { DOMAIN, TestAdapter, testConfig, testRegistration } from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";

describe("the Bridge takes the store's writer lease", () => {
  let dir: string;
  let url: string;
  let hs: FakeHomeserver;
  const registration = testRegistration();
  const stores: Store[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-lease-"));
    url = `sqlite://${join(dir, "bridge.db")}`;
    hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
  });
  after(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function bridge(lease: { standby: boolean }): Promise<Bridge> {
    const store = await openStore(url);
    stores.push(store);
    const config = { ...testConfig(hs.url), store: url, lease: { ...lease, ttlMs: 1_000 } };
    return new Bridge({ config, registration, adapter: new TestAdapter(), store, logger: silentLogger() });
  }

  it("a second bridge on the same store refuses to start, naming the store; the first keeps working", async () => {
    const first = await bridge({ standby: false });
    await first.start();
    const second = await bridge({ standby: false });
    const started = performance.now();
    await assert.rejects(second.start(), (err: unknown) => {
      assert.ok(err instanceof LeaseHeldError);
      assert.match(err.message, /^store sqlite:\/\/.*bridge\.db is in use by another bridge process/);
      return true;
    });
    assert.ok(performance.now() - started >= 1_000, "it waited out a lease a dead process could have left");
    await assert.rejects(
      second.context.setProfile("carol", { displayName: "Carol" }),
      /does not hold the store's writer lease/,
      "a bridge without the lease writes nothing",
    );
    await first.context.setProfile("alice", { displayName: "Alice" }); // the holder writes
    await second.stop();
    await first.stop();
  });

  it("a standby waits without writing, and takes over as soon as the active bridge stops", async () => {
    const active = await bridge({ standby: false });
    await active.start();
    const standby = await bridge({ standby: true });
    let started = false;
    const starting = standby.start().then(() => (started = true));
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(started, false, "still waiting");
    assert.equal(standby.listeningPort, undefined, "a waiting standby does not listen");
    const stopped = performance.now();
    await active.stop();
    await starting;
    assert.ok(performance.now() - stopped < 1_000, "took over within a renewal period of the release");
    await standby.context.setProfile("bob", { displayName: "Bob" });
    assert.ok(standby.listeningPort !== undefined);
    await standby.stop();
  });

  it("a standby's wait ends when it is stopped", async () => {
    const active = await bridge({ standby: false });
    await active.start();
    const standby = await bridge({ standby: true });
    const controller = new AbortController();
    const starting = standby.start({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("SIGTERM")), 200);
    await assert.rejects(starting, /SIGTERM/);
    await standby.stop();
    await active.stop();
  });
});
