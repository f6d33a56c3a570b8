import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
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

  it("serves /ready on both listeners: the caller's checks decide, closing is 503", async () => {
    let storeOk = true;
    const { as, close } = await makeApp(new RecordingHandlers(), {
      metrics: { port: 0 },
      ready: () =>
        Promise.resolve({
          adapter: { ok: true },
          store: storeOk ? { ok: true } : { ok: false, error: "the store failed: gone" },
        }),
    });
    const { port, metricsPort } = await as.listen(0, "127.0.0.1");
    for (const p of [port, metricsPort!]) {
      const res = await fetch(`${base(p)}/ready`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        status: "ready",
        checks: { adapter: { ok: true }, store: { ok: true } },
      });
    }
    storeOk = false;
    for (const p of [port, metricsPort!]) {
      const res = await fetch(`${base(p)}/ready`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), {
        status: "not ready",
        failed: ["store"],
        checks: { adapter: { ok: true }, store: { ok: false, error: "the store failed: gone" } },
      });
      assert.equal((await fetch(`${base(p)}/health`)).status, 200, "still alive");
    }
    await close();
  });

  it("without a readiness check, /ready answers like /health; a throwing check is 503", async () => {
    const plain = await makeApp(new RecordingHandlers());
    const ok = await request(plain.as.app.callback()).get("/ready");
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { status: "ready", checks: {} });
    await plain.close();
    const throwing = await makeApp(new RecordingHandlers(), {
      ready: () => Promise.reject(new Error("bug")),
    });
    const res = await request(throwing.as.app.callback()).get("/ready");
    assert.equal(res.status, 503);
    assert.deepEqual((res.body as { failed: string[] }).failed, ["readiness"]);
    await throwing.close();
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
