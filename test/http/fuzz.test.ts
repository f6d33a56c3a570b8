// Throws thousands of random and mutated bodies and paths at a listening app. Properties:
// never a 500 (a handler failure is retried and dead-lettered after the answer, it is not
// the homeserver's business), every error is {errcode, error} JSON, nothing is delivered
// from a rejected request, and the app still answers afterwards.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import request from "supertest";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { auth, makeApp, type Harness } from "../support/appservice/harness.js";

const EXPECTED_STATUSES = new Set([200, 400, 401, 403, 404, 405, 413]);

let harness: Harness;
let base = "";
const delivered = new Map<string, number>(); // event_id -> times delivered
const order: string[] = []; // every delivery (each try), in order
let failingBodies = 0; // bodies sent with a failing event, each of which becomes a dead letter
let requestNo = 0;
/** Events a handler received without the string fields it is promised. */
const malformedDelivered: unknown[] = [];

before(async () => {
  harness = await makeApp(
    {
      onEvent: (event: MatrixEvent) => {
        const fields = [event.event_id, event.room_id, event.type, event.sender];
        if (!fields.every((f) => typeof f === "string" && f !== "") || typeof event.content !== "object") {
          malformedDelivered.push(event);
        }
        delivered.set(event.event_id, (delivered.get(event.event_id) ?? 0) + 1);
        order.push(event.event_id);
        return (event.content as { boom?: unknown }).boom === true
          ? Promise.reject(new Error("planned handler failure"))
          : Promise.resolve();
      },
      queryUser: () => Promise.resolve(Math.random() < 0.5),
      queryRoomAlias: () => Promise.resolve(false),
      userFromUri: () => Promise.resolve(null),
    },
    {
      bodyLimitBytes: 64 * 1024,
      handlerTimeoutMs: 2000,
      retry: { firstDelayMs: 1, maxDelayMs: 1, unexpectedAttempts: 2 },
    },
  );
  const { port } = await harness.as.listen(0, "127.0.0.1");
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await harness.close();
});

/** A valid body whose event ids all carry this request's tag. */
function validBody(tag: string, n: number, boomAt = -1): { events: MatrixEvent[] } {
  return {
    events: Array.from({ length: n }, (_, i) => ({
      event_id: `$${tag}-${i}:example.org`,
      room_id: `!room${i % 3}:example.org`,
      type: i % 2 ? "m.room.message" : "m.room.member",
      sender: "@alice:example.org",
      origin_server_ts: 1_700_000_000_000 + i,
      content: i === boomAt ? { boom: true } : { body: `m${i}` },
      ...(i % 2 ? {} : { state_key: "@alice:example.org" }),
    })),
  };
}

const deliveredWithTag = (tag: string) => [...delivered.keys()].filter((id) => id.startsWith(`$${tag}-`));

function assertErrorShape(res: { status: number; body: unknown; text: string }, what: string): void {
  assert.ok(
    EXPECTED_STATUSES.has(res.status),
    `${what}: unexpected status ${res.status} ${res.text.slice(0, 200)}`,
  );
  if (res.status !== 200) {
    const body = res.body as { errcode?: unknown; error?: unknown };
    assert.equal(typeof body.errcode, "string", `${what}: errcode in ${res.text.slice(0, 200)}`);
    assert.equal(typeof body.error, "string", `${what}: error message`);
    assert.doesNotMatch(res.text, /hs-secret-token|\n\s+at /, `${what}: no token or stack`);
  }
}

/** Sends a raw body as a transaction; checks the invariants; returns the status. */
async function sendRaw(raw: string | Buffer, tag: string): Promise<number> {
  const res = await request(base)
    .put(`/_matrix/app/v1/transactions/fuzz-${tag}`)
    .set(auth)
    .set("Content-Type", "application/json")
    .send(raw);
  assertErrorShape(res, `body ${tag}`);
  if (res.status !== 200) {
    await harness.as.drain();
    assert.deepEqual(deliveredWithTag(tag), [], `events delivered from rejected request ${tag}`);
  }
  return res.status;
}

type Mutation = (body: Record<string, unknown>, pick: (n: number) => number, junk: unknown) => unknown;
/** Hand-made mutations of a valid body, each a way a body can be wrong (or harmlessly odd). */
const MUTATIONS: Mutation[] = [
  (b, p) => {
    const e = (b.events as Array<Record<string, unknown>>)[p((b.events as unknown[]).length)]!;
    delete e[["event_id", "room_id", "type", "sender", "content"][p(5)]!];
    return b;
  },
  (b, p, junk) => {
    const e = (b.events as Array<Record<string, unknown>>)[p((b.events as unknown[]).length)]!;
    e[["event_id", "room_id", "type", "sender", "content", "state_key", "origin_server_ts"][p(7)]!] = junk;
    return b;
  },
  (b, p, junk) => {
    (b.events as unknown[])[p((b.events as unknown[]).length)] = junk;
    return b;
  },
  (b, _p, junk) => ({ ...b, events: junk }),
  (b) => [b],
  (b) => b.events,
  (b, p, junk) => ({
    ...b,
    [[
      "ephemeral",
      "de.sorunome.msc2409.ephemeral",
      "to_device",
      "device_lists",
      "device_one_time_keys_count",
    ][p(5)]!]: junk,
  }),
  (b) => ({ ...b, events: [...(b.events as unknown[]), ...(b.events as unknown[])] }), // duplicates: valid
  (b) => ({ ...b, unknown_key: { nested: [1, 2, 3] } }), // unknown keys: valid
];

describe("fuzz", () => {
  it("random JSON values and random bytes as bodies are rejected cleanly", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        ),
        async (raw) => {
          const tag = `r${requestNo++}`;
          const status = await sendRaw(raw, tag);
          if (status === 200) {
            // A random value can only be accepted if it really is a valid transaction.
            const parsed = JSON.parse(raw.toString()) as { events?: unknown };
            assert.ok(Array.isArray(parsed.events));
          }
          runs++;
        },
      ),
      { numRuns: 1200 },
    );
    assert.equal(runs, 1200);
  });

  it("mutated valid bodies: rejected with 400 and nothing delivered, or accepted whole", async () => {
    let rejected = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.nat({ max: MUTATIONS.length - 1 }),
        fc.array(fc.nat({ max: 1000 }), { minLength: 4, maxLength: 4 }),
        fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.constant(null), fc.constant("")),
        fc.boolean(),
        async (n, m, picks, junk, truncate) => {
          const tag = `m${requestNo++}`;
          let k = 0;
          const pick = (max: number) => picks[k++ % picks.length]! % max;
          const body = MUTATIONS[m]!(validBody(tag, n), pick, junk);
          let raw = JSON.stringify(body) ?? "";
          if (truncate) raw = raw.slice(0, pick(raw.length));
          const status = await sendRaw(raw, tag);
          assert.ok(status === 200 || status === 400, `status ${status}`);
          if (status === 200) {
            accepted++;
            await harness.as.drain();
            // Every event of an accepted body was delivered exactly once.
            const ids = deliveredWithTag(tag);
            const sent = ((body as { events: unknown[] }).events ?? [])
              .map((e) => (e as { event_id?: unknown }).event_id)
              .filter((id): id is string => typeof id === "string" && id.startsWith(`$${tag}-`));
            assert.deepEqual(ids.sort(), [...new Set(sent)].sort(), `${tag}: every event was handled`);
            for (const id of ids) assert.equal(delivered.get(id), 1, id);
          } else rejected++;
        },
      ),
      { numRuns: 1500 },
    );
    assert.ok(rejected > 300 && accepted > 50, `rejected ${rejected}, accepted ${accepted}`);
  });

  it("a valid body with a failing event gives 200; the event is retried, then dead-lettered, while its room's later events wait; a replay is a no-op", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 8 }), fc.nat(), async (n, at) => {
        const tag = `f${requestNo++}`;
        const boomAt = at % n;
        const body = validBody(tag, n, boomAt);
        failingBodies++;
        assert.equal(await sendRaw(JSON.stringify(body), tag), 200);
        await harness.as.drain();
        const id = (i: number) => `$${tag}-${i}:example.org`;
        for (let i = 0; i < n; i++) {
          assert.equal(
            delivered.get(id(i)),
            i === boomAt ? 2 : 1,
            `event ${i} of ${n}, failing at ${boomAt}`,
          );
        }
        // In the failing event's room (validBody puts event i in room i % 3), the later events
        // were handled only after its last try.
        const lastTry = order.lastIndexOf(id(boomAt));
        for (let i = boomAt + 3; i < n; i += 3) {
          assert.ok(order.indexOf(id(i)) > lastTry, `event ${i} waited for event ${boomAt}`);
        }
        const letter = await harness.as.deadLetters.get(id(boomAt));
        assert.ok(letter, "the failing event is a dead letter");
        assert.equal(letter.reason, "exhausted");
        assert.equal(letter.attempts, 2);
        assert.equal(letter.error.message, "planned handler failure");
        // The homeserver's replay of the transaction (now without the failure) changes nothing.
        assert.equal(await sendRaw(JSON.stringify(validBody(tag, n)), tag), 200);
        await harness.as.drain();
        for (let i = 0; i < n; i++) {
          assert.equal(delivered.get(id(i)), i === boomAt ? 2 : 1, `replay: event ${i} of ${n}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("random paths, methods and credentials never cause a 500 or a malformed answer", async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        "_matrix",
        "app",
        "v1",
        "unstable",
        "transactions",
        "users",
        "rooms",
        "thirdparty",
        "protocol",
        "user",
        "location",
        "alias",
        "ping",
        "health",
        "metrics",
        "..",
        ".",
        "%2F",
        "..%2F..",
        "%",
        "%zz",
        "%E0%A4%A",
        "%00",
        "@test_a:example.org",
        "%23test_a:example.org",
        "testproto",
        "",
      ),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
    );
    const prefix = fc.constantFrom("", "/_matrix/app/v1", "/_matrix/app/unstable", "/_matrix/app");
    const query = fc.constantFrom(
      "",
      "?uri=",
      "?uri=irc%3A%2F%2Fx%2Fy",
      "?userid=%40a",
      "?alias=%23a",
      "?a=%",
      "?access_token=x",
      "?&&=",
    );
    const credentials = fc.constantFrom<Record<string, string>>(
      auth,
      {},
      { Authorization: "Bearer" },
      { Authorization: "Bearer wrong" },
      { Authorization: "Basic abc" },
      { Authorization: "Bearer a b" },
    );
    // Most requests are known routes, with their own method and valid credentials, and odd
    // parameters; the rest are anything at all.
    const templates: Array<[string, string]> = [
      ["PUT", "/_matrix/app/v1/transactions/{}"],
      ["PUT", "/transactions/{}"],
      ["GET", "/_matrix/app/v1/users/{}"],
      ["GET", "/users/{}/{}"],
      ["GET", "/_matrix/app/v1/rooms/{}"],
      ["GET", "/rooms/{}"],
      ["GET", "/_matrix/app/v1/thirdparty/protocol/{}"],
      ["GET", "/_matrix/app/unstable/thirdparty/user/{}"],
      ["GET", "/_matrix/app/v1/thirdparty/location/{}"],
      ["GET", "/_matrix/app/v1/thirdparty/user"],
      ["GET", "/_matrix/app/v1/user"],
      ["GET", "/_matrix/app/v1/alias"],
      ["POST", "/_matrix/app/v1/ping"],
    ];
    const methods = fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD");
    const knownRoute = fc
      .tuple(fc.constantFrom(...templates), segment, segment, query)
      .map(([[method, t], a, b, q]) => ({
        method,
        path: t.replace("{}", a).replace("{}", b) + q,
        creds: auth,
      }));
    const anyRequest = fc
      .tuple(prefix, fc.array(segment, { maxLength: 5 }), query, methods, credentials)
      .map(([pre, segs, q, method, creds]) => ({ method, path: `${pre}/${segs.join("/")}${q}`, creds }));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ arbitrary: knownRoute, weight: 3 }, { arbitrary: anyRequest, weight: 1 }),
        async ({ method, path, creds }) => {
          const req = request(base)[method.toLowerCase() as "get"](path).set(creds);
          const res = method === "PUT" || method === "POST" ? await req.send({ events: [] }) : await req;
          assert.ok(EXPECTED_STATUSES.has(res.status), `${method} ${path}: status ${res.status} ${res.text}`);
          if (method !== "HEAD") assertErrorShape(res, `${method} ${path}`);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("still healthy afterwards, with nothing in flight", async () => {
    await harness.as.drain();
    const res = await request(base).get("/health");
    assert.equal(res.status, 200);
    const metrics = await request(base).get("/metrics");
    assert.match(metrics.text, /bridgekit_appservice_transactions_in_flight 0/);
    assert.match(metrics.text, /bridgekit_appservice_queue_depth 0/);
    assert.match(metrics.text, /bridgekit_inbox_pending_items 0\n/);
    assert.equal(failingBodies, 150);
    assert.equal(
      await harness.as.deadLetters.count(),
      failingBodies,
      "one dead letter per failing event, no more",
    );
    assert.deepEqual(malformedDelivered, [], "handlers only ever received well-formed events");
    assert.ok(delivered.size > 500, `the fuzz delivered events (${delivered.size})`);
  });
});
