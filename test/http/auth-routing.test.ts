import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import {
  auth,
  errcode,
  event,
  HS_TOKEN,
  makeApp,
  RecordingHandlers,
  AS_TOKEN,
  waitFor,
} from "../support/appservice/harness.js";
import { PermanentError, RetryableError } from "../../src/inbox/errors.js";
import { openStore } from "../../src/store/index.js";
import { failingNamespace } from "../support/failing-store.js";

const txn = { events: [] as unknown[] };

describe("authentication", () => {
  it("no credentials: 401 M_UNAUTHORIZED; wrong ones: 403 M_FORBIDDEN; nothing delivered", async () => {
    const h = new RecordingHandlers();
    const { as, close } = await makeApp(h);
    const cb = as.app.callback();
    const body = { events: [event("!a:example.org", 1)] };
    const none = await request(cb).put("/_matrix/app/v1/transactions/1").send(body);
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(none.body as object).sort(), ["errcode", "error"]);
    assert.equal(errcode(none), "M_UNAUTHORIZED");
    const wrongHeader = await request(cb)
      .put("/_matrix/app/v1/transactions/1")
      .set("Authorization", "Bearer nope")
      .send(body);
    assert.equal(wrongHeader.status, 403);
    assert.equal(errcode(wrongHeader), "M_FORBIDDEN");
    const wrongQuery = await request(cb).put("/_matrix/app/v1/transactions/1?access_token=nope").send(body);
    assert.equal(wrongQuery.status, 403);
    const asToken = await request(cb)
      .put("/_matrix/app/v1/transactions/1")
      .set("Authorization", `Bearer ${AS_TOKEN}`)
      .send(body);
    assert.equal(asToken.status, 403, "the as_token is not the hs_token");
    const notBearer = await request(cb)
      .put("/_matrix/app/v1/transactions/1")
      .set("Authorization", `Basic ${HS_TOKEN}`)
      .send(body);
    assert.equal(notBearer.status, 401);
    assert.deepEqual(h.events, []);
    // The rejected attempts recorded nothing: the same txnId is processed once authenticated.
    const ok = await request(cb).put("/_matrix/app/v1/transactions/1").set(auth).send(body);
    assert.equal(ok.status, 200);
    await as.drain();
    assert.equal(h.events.length, 1);
    await close();
  });

  it("accepts the header, the query parameter, or both when they agree", async () => {
    const { as, close } = await makeApp(new RecordingHandlers());
    const cb = as.app.callback();
    assert.equal((await request(cb).put("/_matrix/app/v1/transactions/h").set(auth).send(txn)).status, 200);
    assert.equal(
      (await request(cb).put(`/_matrix/app/v1/transactions/q?access_token=${HS_TOKEN}`).send(txn)).status,
      200,
    );
    assert.equal(
      (await request(cb).put(`/_matrix/app/v1/transactions/b?access_token=${HS_TOKEN}`).set(auth).send(txn))
        .status,
      200,
    );
    const disagree = await request(cb)
      .put("/_matrix/app/v1/transactions/d?access_token=other")
      .set(auth)
      .send(txn);
    assert.equal(disagree.status, 403);
    const disagree2 = await request(cb)
      .put(`/_matrix/app/v1/transactions/d?access_token=${HS_TOKEN}`)
      .set("Authorization", "Bearer other")
      .send(txn);
    assert.equal(disagree2.status, 403);
    const twoQuery = await request(cb)
      .put(`/_matrix/app/v1/transactions/d?access_token=${HS_TOKEN}&access_token=x`)
      .send(txn);
    assert.equal(twoQuery.status, 403);
    await close();
  });

  it("every authenticated route refuses missing credentials", async () => {
    const { as, close } = await makeApp(new RecordingHandlers());
    const cb = as.app.callback();
    const gets = [
      "/_matrix/app/v1/users/@test_a:example.org",
      "/users/@test_a:example.org",
      "/_matrix/app/v1/rooms/%23test_a:example.org",
      "/rooms/%23test_a:example.org",
      "/_matrix/app/v1/thirdparty/protocol/testproto",
      "/_matrix/app/v1/thirdparty/user/testproto",
      "/_matrix/app/v1/thirdparty/location/testproto",
      "/_matrix/app/v1/thirdparty/user",
      "/_matrix/app/v1/thirdparty/location",
      "/_matrix/app/unstable/thirdparty/protocol/testproto",
      "/_matrix/app/v1/user?uri=irc://x/y",
      "/_matrix/app/v1/alias?uri=irc://x/y",
    ];
    for (const path of gets) {
      const res = await request(cb).get(path);
      assert.equal(res.status, 401, path);
      assert.equal(errcode(res), "M_UNAUTHORIZED", path);
    }
    assert.equal((await request(cb).post("/_matrix/app/v1/ping").send({})).status, 401);
    assert.equal((await request(cb).put("/transactions/1").send(txn)).status, 401);
    await close();
  });

  it("never writes a token to the log, from the header or the query string", async () => {
    const h = new RecordingHandlers();
    h.eventHook = () => Promise.reject(new Error("handler failure"));
    const { as, close, log } = await makeApp(h, { retry: { firstDelayMs: 1, unexpectedAttempts: 2 } });
    const cb = as.app.callback();
    await request(cb)
      .put(`/_matrix/app/v1/transactions/1?access_token=${HS_TOKEN}`)
      .send({ events: [event("!a:example.org", 1)] });
    await as.drain(); // the failure, its retry and its dead letter are logged too
    assert.match(log.text, /onEvent failed; giving up/);
    await request(cb).put(`/_matrix/app/v1/transactions/2?access_token=wrong-token-value`).send(txn);
    await request(cb).get(`/_matrix/app/v1/users/@test_a:example.org?access_token=${HS_TOKEN}`);
    await request(cb).get(`/nope?access_token=${HS_TOKEN}`);
    await request(cb).post("/_matrix/app/v1/ping").set(auth).send({ transaction_id: "p1" });
    assert.ok(log.lines.length > 4, "requests were logged");
    assert.doesNotMatch(log.text, new RegExp(HS_TOKEN));
    assert.doesNotMatch(log.text, /wrong-token-value/);
    assert.doesNotMatch(log.text, /access_token=/);
    await close();
  });

  it("no response ever contains the token or a stack trace", async () => {
    // A handler failure is not the homeserver's business: 200, then retried and dead-lettered.
    const h = new RecordingHandlers();
    h.eventHook = () =>
      Promise.reject(new Error(`oops: GET /x?access_token=${HS_TOKEN} with Bearer ${HS_TOKEN}`));
    const { as, close } = await makeApp(h, { retry: { firstDelayMs: 1, unexpectedAttempts: 2 } });
    const cb = as.app.callback();
    const res = await request(cb)
      .put(`/_matrix/app/v1/transactions/1?access_token=${HS_TOKEN}`)
      .send({ events: [event("!a:example.org", 1)] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    await as.drain();
    const letters = await request(cb).get("/_bridgekit/v1/dead-letters").set(auth);
    assert.equal(letters.status, 200);
    const list = (letters.body as { dead_letters: Array<{ id: string; error: { message: string } }> })
      .dead_letters;
    assert.deepEqual(
      list.map((l) => l.id),
      ["$ev1:example.org"],
    );
    assert.match(list[0]!.error.message, /^oops: /, "the error is kept, with its tokens masked");
    for (const text of [res.text, letters.text]) {
      assert.doesNotMatch(text, new RegExp(HS_TOKEN));
      assert.doesNotMatch(text, /\bat .*\.ts:\d+/);
    }
    await close();

    // The store failing to record the transaction is: 500, still without the secret or a stack.
    const store = await openStore("memory://");
    const failing = failingNamespace(
      store,
      "inbox",
      ["setMany"],
      () => new Error(`connect failed with ${HS_TOKEN}`),
    );
    const down = await makeApp(new RecordingHandlers(), { store: failing });
    const refused = await request(down.as.app.callback())
      .put("/_matrix/app/v1/transactions/2")
      .set(auth)
      .send({ events: [event("!a:example.org", 2)] });
    assert.equal(refused.status, 500);
    assert.equal(errcode(refused), "M_UNKNOWN");
    assert.doesNotMatch(refused.text, new RegExp(HS_TOKEN));
    assert.doesNotMatch(refused.text, /\bat .*\.ts:\d+/);
    await down.close();
    await store.close();
  });
});

describe("routing", () => {
  it("unknown path: 404 M_UNRECOGNIZED; wrong method: 405 M_UNRECOGNIZED with Allow", async () => {
    const { as, close } = await makeApp(new RecordingHandlers());
    const cb = as.app.callback();
    for (const path of [
      "/nope",
      "/_matrix/app/v1/nope",
      "/_matrix/app/v2/transactions/1",
      "/_matrix/app/v1/transactions/",
    ]) {
      const res = await request(cb).get(path).set(auth);
      assert.equal(res.status, 404, path);
      assert.equal(errcode(res), "M_UNRECOGNIZED", path);
      assert.equal(typeof (res.body as { error: unknown }).error, "string");
    }
    const wrong = await request(cb).get("/_matrix/app/v1/transactions/1").set(auth);
    assert.equal(wrong.status, 405);
    assert.equal(errcode(wrong), "M_UNRECOGNIZED");
    assert.equal(wrong.headers.allow, "PUT");
    const wrong2 = await request(cb).delete("/_matrix/app/v1/users/@test_a:example.org").set(auth);
    assert.equal(wrong2.status, 405);
    assert.equal((await request(cb).get("/_matrix/app/v1/ping").set(auth)).status, 405);
    await close();
  });

  it("GET /health needs no auth and tells no secrets", async () => {
    const { as, close } = await makeApp(new RecordingHandlers());
    const res = await request(as.app.callback()).get("/health");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: "ok" });
    assert.doesNotMatch(res.text, new RegExp(`${HS_TOKEN}|${AS_TOKEN}`));
    await close();
  });

  it("metrics count transactions, events, handler errors, retries, dead letters, latency and queue depth on a per-app registry", async () => {
    const h = new RecordingHandlers();
    let fail = true;
    h.eventHook = (e) => {
      if (e.event_id === "$ev3:example.org") return Promise.reject(new PermanentError("cannot carry that"));
      if (fail && e.event_id === "$ev2:example.org") {
        fail = false; // fails once, then its retry succeeds
        return Promise.reject(new Error("x"));
      }
      return Promise.resolve();
    };
    const first = await makeApp(h, { retry: { firstDelayMs: 1 } });
    const second = await makeApp(new RecordingHandlers());
    const cb = first.as.app.callback();
    const body = {
      events: [
        event("!a:example.org", 1),
        event("!a:example.org", 2, { state_key: "" }),
        event("!b:example.org", 3),
      ],
    };
    assert.equal((await request(cb).put("/_matrix/app/v1/transactions/1").set(auth).send(body)).status, 200);
    await first.as.drain();
    await request(cb).put("/_matrix/app/v1/transactions/1").set(auth).send(body);
    await request(cb).put("/_matrix/app/v1/transactions/1").set(auth).send(body);
    await request(cb).put("/_matrix/app/v1/transactions/2").set(auth).send({ nope: 1 });
    await first.as.drain();
    const res = await request(cb).get("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"] ?? "", /text\/plain/);
    const text = res.text;
    assert.match(text, /bridgekit_appservice_transactions_total\{outcome="recorded"\} 1\n/);
    assert.match(text, /bridgekit_appservice_transactions_total\{outcome="duplicate"\} 2\n/);
    assert.match(text, /bridgekit_appservice_transactions_total\{outcome="rejected"\} 1\n/);
    assert.doesNotMatch(text, /outcome="failed"/, "a handler failure does not fail the transaction");
    assert.match(text, /bridgekit_appservice_events_total\{kind="message"\} 1\n/);
    assert.match(text, /bridgekit_appservice_events_total\{kind="state"\} 1\n/);
    assert.match(text, /bridgekit_appservice_handler_errors_total\{handler="onEvent",reason="error"\} 1\n/);
    assert.match(
      text,
      /bridgekit_appservice_handler_errors_total\{handler="onEvent",reason="permanent"\} 1\n/,
    );
    assert.match(text, /bridgekit_inbox_retries_total 1\n/);
    assert.match(text, /bridgekit_inbox_dead_letters_total\{reason="permanent"\} 1\n/);
    assert.match(text, /bridgekit_inbox_full_total 0\n/);
    assert.match(text, /bridgekit_appservice_handler_duration_seconds_count\{handler="onEvent"\} 4\n/);
    assert.match(text, /bridgekit_appservice_queue_depth 0\n/);
    assert.match(text, /bridgekit_inbox_pending_items 0\n/);
    assert.match(text, /bridgekit_inbox_rooms_waiting_retry 0\n/);
    assert.deepEqual(h.eventIds(), ["$ev1:example.org", "$ev2:example.org"]);
    // A second app has its own registry: nothing leaks between them.
    const other = await request(second.as.app.callback()).get("/metrics");
    assert.doesNotMatch(other.text, /outcome="recorded"/);
    assert.doesNotMatch(other.text, /bridgekit_inbox_retries_total 1/);
    assert.notEqual(first.as.metrics, second.as.metrics);
    await first.close();
    await second.close();
  });

  it("metrics show pending items and rooms waiting to retry while an event is retried", async () => {
    const h = new RecordingHandlers();
    let failures = 0;
    h.eventHook = (e) =>
      e.event_id === "$ev1:example.org" && failures++ < 1
        ? Promise.reject(new RetryableError("remote down"))
        : Promise.resolve();
    const { as, close } = await makeApp(h, { retry: { firstDelayMs: 60_000 } });
    const cb = as.app.callback();
    const body = {
      events: [event("!a:example.org", 1), event("!a:example.org", 2), event("!b:example.org", 3)],
    };
    assert.equal((await request(cb).put("/_matrix/app/v1/transactions/1").set(auth).send(body)).status, 200);
    await waitFor(
      () => h.eventIds().includes("$ev3:example.org") && failures === 1,
      "the other room to flow",
    );
    const waiting = (await request(cb).get("/metrics")).text;
    assert.match(waiting, /bridgekit_inbox_rooms_waiting_retry 1\n/);
    assert.match(waiting, /bridgekit_inbox_pending_items 2\n/, "ev1 and the ev2 waiting behind it");
    assert.match(waiting, /bridgekit_inbox_retries_total 1\n/);
    as.retryNow();
    await as.drain();
    assert.deepEqual(h.eventIds(), ["$ev3:example.org", "$ev1:example.org", "$ev2:example.org"]);
    const after = (await request(cb).get("/metrics")).text;
    assert.match(after, /bridgekit_inbox_rooms_waiting_retry 0\n/);
    assert.match(after, /bridgekit_inbox_pending_items 0\n/);
    await close();
  });

  it("metrics can be turned off or moved to another path", async () => {
    const off = await makeApp(new RecordingHandlers(), { metrics: false });
    assert.equal((await request(off.as.app.callback()).get("/metrics")).status, 404);
    await off.close();
    const moved = await makeApp(new RecordingHandlers(), { metrics: { path: "/_bridge/metrics" } });
    assert.equal((await request(moved.as.app.callback()).get("/_bridge/metrics")).status, 200);
    assert.equal((await request(moved.as.app.callback()).get("/metrics")).status, 404);
    await moved.close();
  });
});
