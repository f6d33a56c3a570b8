import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { auth, errcode, event, makeApp, RecordingHandlers } from "../support/appservice/harness.js";

const path = "/_matrix/app/v1/transactions";

describe("transaction bodies", () => {
  it("not JSON: 400 M_NOT_JSON, whatever the content type", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const bad: Array<[string, string | Buffer]> = [
      ["application/json", "{not json"],
      ["application/json", ""],
      ["text/plain", "   "],
      ["application/octet-stream", Buffer.from([0xff, 0xfe, 0x7b, 0x7d])],
      ["application/json", '{"events": [] '],
    ];
    for (const [type, body] of bad) {
      const res = await request(cb).put(`${path}/1`).set(auth).set("Content-Type", type).send(body);
      assert.equal(res.status, 400, `${type} ${String(body)}`);
      assert.equal(errcode(res), "M_NOT_JSON");
    }
    await as.drain();
    assert.deepEqual(h.events, []);
    await close();
  });

  it("is lenient about Content-Type: JSON sent as text/plain or with none is accepted", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const body = JSON.stringify({ events: [event("!a:example.org", 1)] });
    const res = await request(cb).put(`${path}/1`).set(auth).set("Content-Type", "text/plain").send(body);
    assert.equal(res.status, 200);
    const res2 = await request(cb)
      .put(`${path}/2`)
      .set(auth)
      .set("Content-Type", "application/x-www-form-urlencoded")
      .send(JSON.stringify({ events: [event("!a:example.org", 2)] }));
    assert.equal(res2.status, 200);
    await as.drain();
    assert.equal(h.events.length, 2);
    await close();
  });

  it("wrong shapes: 400 M_BAD_JSON naming the key (and event index); nothing delivered or recorded", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const good = event("!a:example.org", 1);
    const cases: Array<[unknown, RegExp]> = [
      [[], /JSON object/],
      ["events", /JSON object/],
      [null, /JSON object/],
      [42, /JSON object/],
      [{}, /^events: required/],
      [{ events: {} }, /^events: must be an array/],
      [{ events: "x" }, /^events: must be an array/],
      [{ events: null }, /^events: must be an array/],
      [{ events: [good, 5] }, /^events\[1\]: must be an object/],
      [{ events: [good, []] }, /^events\[1\]: must be an object/],
      [{ events: [good, null] }, /^events\[1\]: must be an object/],
      [{ events: [{ ...good, event_id: 1 }] }, /^events\[0\]\.event_id: must be a non-empty string/],
      [{ events: [good, { ...good, event_id: "$2", room_id: undefined }] }, /^events\[1\]\.room_id/],
      [{ events: [{ ...good, type: null }] }, /^events\[0\]\.type/],
      [{ events: [{ ...good, sender: "" }] }, /^events\[0\]\.sender/],
      [{ events: [{ ...good, content: "hi" }] }, /^events\[0\]\.content: must be an object/],
      [{ events: [{ ...good, state_key: 3 }] }, /^events\[0\]\.state_key: must be a string/],
      [{ events: [{ ...good, origin_server_ts: "now" }] }, /^events\[0\]\.origin_server_ts/],
      [{ events: [], ephemeral: {} }, /^ephemeral: must be an array/],
      [{ events: [], ephemeral: [1] }, /^ephemeral\[0\]: must be an object/],
      [{ events: [], "de.sorunome.msc2409.ephemeral": [{}] }, /^de\.sorunome\.msc2409\.ephemeral\[0\]\.type/],
      [{ events: [], to_device: "x" }, /^to_device: must be an array/],
      [{ events: [], device_lists: [] }, /^device_lists: must be an object/],
      [{ events: [], device_lists: { changed: [1] } }, /^device_lists\.changed: must be an array of strings/],
      [{ events: [], device_one_time_keys_count: 5 }, /^device_one_time_keys_count: must be an object/],
    ];
    for (const [i, [body, message]] of cases.entries()) {
      const res = await request(cb)
        .put(`${path}/bad${i}`)
        .set(auth)
        .set("Content-Type", "application/json")
        .send(JSON.stringify(body));
      assert.equal(res.status, 400, `case ${i}: ${JSON.stringify(body)}`);
      assert.equal(errcode(res), "M_BAD_JSON", `case ${i}`);
      assert.match((res.body as { error: string }).error, message, `case ${i}`);
    }
    await as.drain();
    assert.deepEqual(h.events, [], "an invalid event anywhere rejects the whole transaction");
    // A rejected transaction is not recorded: the same txnIds work once the body is valid.
    for (let i = 0; i < cases.length; i++) {
      assert.equal(
        (
          await request(cb)
            .put(`${path}/bad${i}`)
            .set(auth)
            .send({ events: [event("!a:example.org", `g${i}`)] })
        ).status,
        200,
      );
    }
    await as.drain();
    assert.equal(h.events.length, cases.length);
    await close();
  });

  it("over the limit: 413 M_TOO_LARGE, declared or streamed, and the transaction is not recorded", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h, { bodyLimitBytes: 2048 });
    const cb = as.app.callback();
    const big = { events: [event("!a:example.org", 1, { content: { body: "x".repeat(4096) } })] };
    const res = await request(cb).put(`${path}/big`).set(auth).send(big);
    assert.equal(res.status, 413);
    assert.equal(errcode(res), "M_TOO_LARGE");
    // Chunked (no Content-Length): counted while reading.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const server = as.app.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        void import("node:http").then(({ request: httpRequest }) => {
          const req = httpRequest(
            {
              port,
              host: "127.0.0.1",
              method: "PUT",
              path: `${path}/chunked`,
              headers: { ...auth, "Transfer-Encoding": "chunked" },
            },
            (r) => {
              let text = "";
              r.on("data", (c: Buffer) => (text += c.toString()));
              r.on("end", () => server.close(() => resolve({ status: r.statusCode ?? 0, body: text })));
            },
          );
          req.on("error", reject);
          const json = JSON.stringify(big);
          for (let i = 0; i < json.length; i += 500) req.write(json.slice(i, i + 500));
          req.end();
        });
      });
    });
    assert.equal(chunked.status, 413);
    assert.equal((JSON.parse(chunked.body) as { errcode: string }).errcode, "M_TOO_LARGE");
    await as.drain();
    assert.deepEqual(h.events, []);
    const small = { events: [event("!a:example.org", 2)] };
    assert.equal((await request(cb).put(`${path}/big`).set(auth).send(small)).status, 200);
    await as.drain();
    assert.equal(h.events.length, 1);
    await close();
  });

  it("the default limit accepts 100 events of 64 KiB plus ephemeral data", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const events = Array.from({ length: 100 }, (_, i) =>
      event(`!r${i % 10}:example.org`, i, { content: { body: "y".repeat(64 * 1024 - 200) } }),
    );
    const ephemeral = Array.from({ length: 200 }, () => ({
      type: "m.receipt",
      room_id: "!r1:example.org",
      content: { x: "z".repeat(1000) },
    }));
    const res = await request(as.app.callback()).put(`${path}/full`).set(auth).send({ events, ephemeral });
    assert.equal(res.status, 200);
    await as.drain();
    assert.equal(h.events.length, 100);
    const receipts = h.calls.filter((c) => c.handler === "ephemeral").flatMap((c) => c.data as unknown[]);
    assert.equal(receipts.length, 200, "the ephemeral data is handed over after the answer");
    await close();
  });

  it("POST /ping accepts {}, {transaction_id} (string or null) or an empty body; refuses a bad one", async () => {
    const pings: Array<string | undefined> = [];
    const h = new RecordingHandlers();
    const handlers = Object.assign(h, {
      onPing: (id: string | undefined) => {
        pings.push(id);
        return Promise.resolve();
      },
    });
    const { as, close, log } = await makeApp(handlers);
    const cb = as.app.callback();
    assert.equal(
      (await request(cb).post("/_matrix/app/v1/ping").set(auth).send({ transaction_id: "abc" })).status,
      200,
    );
    const empty = await request(cb).post("/_matrix/app/v1/ping").set(auth);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body, {});
    assert.equal(
      (await request(cb).post("/_matrix/app/unstable/fi.mau.msc2659/ping").set(auth).send({})).status,
      200,
    );
    const nullId = await request(cb).post("/_matrix/app/v1/ping").set(auth).send({ transaction_id: null });
    assert.equal(nullId.status, 200, "Synapse sends null when the ping request had no transaction id");
    assert.deepEqual(pings, ["abc", undefined, undefined, undefined]);
    assert.match(log.text, /"transactionId":"abc"/);
    const bad = await request(cb).post("/_matrix/app/v1/ping").set(auth).send({ transaction_id: 5 });
    assert.equal(bad.status, 400);
    assert.equal(errcode(bad), "M_BAD_JSON");
    const notObject = await request(cb)
      .post("/_matrix/app/v1/ping")
      .set(auth)
      .set("Content-Type", "application/json")
      .send("[1]");
    assert.equal(notObject.status, 400);
    await close();
  });
});
