import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { auth, deferred, event, makeApp, RecordingHandlers } from "../support/appservice/harness.js";

const base = (port: number) => `http://127.0.0.1:${port}`;

describe("listen and close", () => {
  it("listens on a real port; close() lets an in-flight transaction finish, then stops accepting", async () => {
    const h = new RecordingHandlers();
    const gate = deferred();
    const started = deferred();
    h.eventHook = async () => {
      started.resolve();
      await gate.promise;
    };
    const { as, close } = await makeApp(h);
    const { port } = await as.listen(0, "127.0.0.1");
    assert.ok(port > 0);
    const inFlight = fetch(`${base(port)}/_matrix/app/v1/transactions/1`, {
      method: "PUT",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ events: [event("!a:example.org", 1)] }),
    });
    await started.promise;
    let closed = false;
    const closing = as.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(closed, false, "close waits for the transaction in flight");
    gate.resolve();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    await closing;
    assert.equal(closed, true);
    assert.equal(h.events.length, 1);
    await assert.rejects(fetch(`${base(port)}/health`), "no longer accepting connections");
    await close();
  });

  it("serves metrics and health on a separate port when asked", async () => {
    const { as, close } = await makeApp(new RecordingHandlers(), { metrics: { port: 0 } });
    const { port, metricsPort } = await as.listen(0, "127.0.0.1");
    assert.ok(metricsPort !== undefined && metricsPort !== port);
    const metrics = await fetch(`${base(metricsPort)}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /bridgekit_appservice_queue_depth/);
    assert.equal((await fetch(`${base(metricsPort)}/health`)).status, 200);
    assert.equal((await fetch(`${base(port)}/metrics`)).status, 404, "not on the homeserver-facing port");
    assert.equal(
      (await fetch(`${base(metricsPort)}/_matrix/app/v1/transactions/1`, { method: "PUT" })).status,
      404,
    );
    await close();
  });

  it("refuses bad options with an error naming the option", async () => {
    await assert.rejects(makeApp(new RecordingHandlers(), { handlerTimeoutMs: 0 }), /handlerTimeoutMs/);
    await assert.rejects(makeApp(new RecordingHandlers(), { concurrency: -1 }), /concurrency/);
    await assert.rejects(
      makeApp(new RecordingHandlers(), { inbox: { events: 0 } }),
      /inbox\.events must be a positive integer, got 0/,
    );
    await assert.rejects(makeApp({} as RecordingHandlers), /handlers\.onEvent/);
  });
});
