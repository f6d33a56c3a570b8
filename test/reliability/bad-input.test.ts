// Bad input: malformed registration and config files (hundreds of mutations of the shipped
// examples) and a fuzz of HTTP requests against a running Bridge. Every bad input must give
// a clear error naming the file (and the key, where there is one) or a clean HTTP error;
// nothing crashes, and nothing is recorded: the store's files are byte-for-byte unchanged
// and a rejected transaction's events are delivered when a good copy comes later.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { load } from "js-yaml";
import request from "supertest";
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import { ValidationError } from "../../src/common/validation-error.js";
import { loadConfig } from "../../src/config/load.js";
import { generateRegistration, loadRegistration, type Registration } from "../../src/registration/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { DOMAIN, TestAdapter, testConfig } from "../support/bridge-harness.js";
import { FakeHomeserver } from "../support/fake-homeserver.js";
import { scratchRoot } from "./support/bridge-files.js";
import { structuralMutations, textMutations, type Mutation } from "./support/file-mutations.js";
import { seededRandom } from "./support/random.js";

const ROOT = join(import.meta.dirname, "../..");
const random = seededRandom();

/** A digest of every file of the sqlite store (db, journal, wal): any write changes it. */
function storeDigest(dir: string, base: string): string {
  const hash = createHash("sha256");
  for (const name of readdirSync(dir)
    .filter((n) => n.startsWith(base))
    .sort()) {
    hash.update(name).update(readFileSync(join(dir, name)));
  }
  return hash.digest("hex");
}

interface Outcome {
  mutation: Mutation;
  error?: unknown;
}

/** Keys whose value is a path or module the error must show as it is, however long. */
const ECHOED_KEYS = new Set(["appservice.registration", "adapter.module"]);

/**
 * Problems with how a failure was reported; [] when the error is what a user should see: a
 * ValidationError naming the file and the (top-level) key, or, for the adapter module, the
 * loader's error naming the module; short, without a stack trace.
 */
function judge(o: Outcome, file: string): string[] {
  if (o.error === undefined) return [];
  const err = o.error;
  const what = o.mutation.label;
  const short = (e: Error) => e.message.slice(0, 300);
  if (err instanceof Error && err.name === "AdapterLoadError") {
    return /^adapter module "/.test(err.message) ? [] : [`${what}: unclear adapter error: ${short(err)}`];
  }
  if (!(err instanceof ValidationError))
    return [`${what}: ${err instanceof Error ? err.stack : typeof err} is not a ValidationError`];
  const problems: string[] = [];
  const registrationKey = o.mutation.key === "appservice.registration";
  // A file the config names that cannot be read (a damaged registration path) is reported
  // against that file.
  const referenced = err.source !== file && /file not found|cannot read/.test(err.message);
  if (!err.message.includes(file) && !referenced)
    problems.push(`${what}: the error does not name the file: ${short(err)}`);
  const top = o.mutation.top;
  if (top !== undefined && !registrationKey && !err.message.includes(top))
    problems.push(`${what}: the error does not name the key ${top}: ${short(err)}`);
  if (err.message.length > 4000 && !ECHOED_KEYS.has(o.mutation.key ?? ""))
    problems.push(`${what}: a ${err.message.length}-character error message: ${short(err)}`);
  if (/\n\s+at .+:\d+:\d+/.test(err.message)) problems.push(`${what}: a stack trace in the message`);
  return problems;
}

describe("bad files", { timeout: 180_000 }, () => {
  let dir: string;
  let registrationText: string;
  let configText: string;
  const secrets: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(scratchRoot(), "bk-rel-files-"));
    // The example with real-looking secrets, so a leak of them can be seen.
    const fresh = generateRegistration({
      id: "irc",
      url: "http://127.0.0.1:9000",
      domain: "example.org",
      senderLocalpart: "ircbot",
      ghosts: "irc_{id}",
    });
    secrets.push(fresh.as_token, fresh.hs_token);
    registrationText = (await readFile(join(ROOT, "registration.yaml.example"), "utf8"))
      .replace("REPLACE-with-output-of-generate-registration-as-token", fresh.as_token)
      .replace("REPLACE-with-output-of-generate-registration-hs-token", fresh.hs_token);
    configText = (await readFile(join(ROOT, "config.example.yaml"), "utf8"))
      .replace("./examples/echo/src/adapter.ts", join(ROOT, "examples/echo/src/adapter.ts"))
      .replace("level: info", "level: silent");
    await writeFile(join(dir, "registration.yaml"), registrationText);
    await loadRegistration(join(dir, "registration.yaml")); // the base is valid
    await loadConfig(await writeConfig(configText), {});
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeConfig(content: string | Buffer): Promise<string> {
    const path = join(dir, "config.yaml");
    await writeFile(path, content);
    return path;
  }

  it("registration: every mutation loads, or fails with a ValidationError naming the file and key", async (t) => {
    const doc = load(registrationText) as Record<string, unknown>;
    const mutations = [...structuralMutations(doc), ...textMutations(registrationText, random, 150)];
    const path = join(dir, "bad-registration.yaml");
    const registrationOutcomes: Outcome[] = [];
    for (const mutation of mutations) {
      await writeFile(path, mutation.content);
      const outcome: Outcome = { mutation };
      try {
        await loadRegistration(path);
      } catch (err) {
        outcome.error = err;
      }
      registrationOutcomes.push(outcome);
    }
    const problems = registrationOutcomes.flatMap((o) => judge(o, path));
    const failed = registrationOutcomes.filter((o) => o.error !== undefined).length;
    t.diagnostic(
      `registration: seed ${random.seed}; ${mutations.length} mutations of registration.yaml.example: ` +
        `${failed} rejected with a ValidationError, ${mutations.length - failed} still valid (optional keys, ` +
        `harmless damage); badly reported ${problems.length}`,
    );
    assert.deepEqual(problems.slice(0, 15), []);
    assert.ok(failed > mutations.length / 2, "most mutations are errors");
  });

  // Regression tests for bugs this suite found (fixed in 24c93ff): a YAML syntax error was
  // reported with js-yaml's snippet of the surrounding lines, secrets and all, as long as a
  // one-line file; homeserver.url with a query string passed validation and then failed as a
  // bare TypeError, and with user:password the error showed the password.
  it("a YAML syntax error next to the tokens does not show them in the error", async () => {
    const path = join(dir, "syntax-error.yaml");
    await writeFile(
      path,
      registrationText.replace("sender_localpart: ircbot", "sender_localpart: ir: : :cbot"),
    );
    const err = await loadRegistration(path).then(
      () => assert.fail("a syntax error loaded"),
      (e: unknown) => e as Error,
    );
    assert.ok(err instanceof ValidationError && err.message.includes(path), String(err));
    for (const secret of secrets)
      assert.ok(!err.message.includes(secret), `the error shows a token:\n${err.message}`);
  });

  it("a YAML syntax error in a huge one-line file gives a short error", async () => {
    const path = join(dir, "huge-line.yaml");
    await writeFile(path, "garbage: [".repeat(800_000));
    const err = await loadRegistration(path).then(
      () => assert.fail("junk loaded"),
      (e: unknown) => e as Error,
    );
    assert.ok(err instanceof ValidationError && err.message.includes(path), String(err).slice(0, 300));
    assert.ok(err.message.length < 4000, `a ${err.message.length}-character error message`);
  });

  for (const url of ["http://127.0.0.1:8008/?x=1", "http://user:secret@127.0.0.1:8008"]) {
    it(`homeserver.url ${url.replace(/secret/, "***")} is refused naming the file and key`, async () => {
      const path = await writeConfig(configText.replace("url: http://127.0.0.1:8008", `url: ${url}`));
      const err = await Bridge.fromConfigFile(path, {}, silentLogger()).then(
        async (bridge) => {
          await bridge.stop();
          return undefined;
        },
        (e: unknown) => e,
      );
      assert.ok(err instanceof ValidationError, `not a ValidationError: ${String(err)}`);
      assert.match(err.message, /homeserver\.url/);
      assert.ok(err.message.includes(path));
      assert.ok(!err.message.includes("secret"), "the password is shown");
    });
  }

  it("config: every mutation loads, or Bridge.fromConfigFile fails naming the file and key, store untouched", async (t) => {
    // A store with data in it, where the config points.
    await mkdir(join(dir, "data"), { recursive: true });
    const storeFile = join(dir, "data", "echo.db");
    const seed = await openStore(`sqlite://${storeFile}`);
    await seed.namespace<string>("marker").set("k", "v");
    await seed.close();
    let digest = storeDigest(join(dir, "data"), "echo.db");

    const doc = load(configText) as Record<string, unknown>;
    const mutations = [...structuralMutations(doc), ...textMutations(configText, random, 150)];
    const outcomes: Outcome[] = [];
    let started = 0;
    for (const mutation of mutations) {
      const path = await writeConfig(mutation.content);
      const outcome: Outcome = { mutation };
      try {
        const bridge = await Bridge.fromConfigFile(path, {}, silentLogger());
        started++;
        await bridge.stop(); // not started: closes what it opened (the store)
        digest = storeDigest(join(dir, "data"), "echo.db"); // a valid config may open (and create) it
      } catch (err) {
        outcome.error = err;
        assert.equal(
          storeDigest(join(dir, "data"), "echo.db"),
          digest,
          `${mutation.label}: the store changed`,
        );
      }
      outcomes.push(outcome);
    }
    const problems = outcomes.flatMap((o) => judge(o, join(dir, "config.yaml")));
    t.diagnostic(
      `config: ${mutations.length} mutations of config.example.yaml through Bridge.fromConfigFile: ` +
        `${mutations.length - started} rejected, ${started} valid; badly reported ${problems.length}; ` +
        `store files unchanged after every rejection`,
    );
    assert.deepEqual(problems.slice(0, 15), []);
    assert.ok(started < mutations.length / 2, "most mutations are errors");
  });

  it("a bad registration behind a good config: the error names the registration file, the store is untouched", async () => {
    const storeDir = join(dir, "data2");
    await mkdir(storeDir, { recursive: true });
    const configPath = await writeConfig(
      configText.replace("sqlite://data/echo.db", "sqlite://data2/echo.db"),
    );
    const mutations = textMutations(registrationText, random, 20);
    for (const mutation of mutations) {
      await writeFile(join(dir, "registration.yaml"), mutation.content);
      let error: unknown;
      try {
        const bridge = await Bridge.fromConfigFile(configPath, {}, silentLogger());
        await bridge.stop();
        await rm(join(storeDir, "echo.db"), { force: true }); // opened by a valid one
      } catch (err) {
        error = err;
      }
      if (error === undefined) continue; // harmless damage (e.g. a flipped byte in a comment)
      assert.ok(error instanceof ValidationError, `${mutation.label}: ${(error as Error).stack}`);
      assert.ok(
        error.message.includes(join(dir, "registration.yaml")),
        `${mutation.label}: ${error.message}`,
      );
      assert.ok(!existsSync(join(storeDir, "echo.db")), `${mutation.label}: the store was opened`);
    }
    await writeFile(join(dir, "registration.yaml"), registrationText);
  });
});

// ---------------------------------------------------------------------------------------

const EXPECTED = new Set([200, 400, 401, 403, 404, 405, 413]);

describe("HTTP fuzz against a running Bridge", { timeout: 180_000 }, () => {
  let hs: FakeHomeserver;
  let store: Store;
  let bridge: Bridge;
  let dir: string;
  let base: string;
  let registration: Registration;
  let auth: Record<string, string>;
  const adapter = new TestAdapter();
  const portalRooms: string[] = [];
  let n = 0;

  before(async () => {
    registration = generateRegistration({
      id: "test",
      url: "http://127.0.0.1:1",
      domain: DOMAIN,
      senderLocalpart: "bot",
      ghosts: "test_{id}",
      portals: "test_{id}",
    });
    auth = { Authorization: `Bearer ${registration.hs_token}` };
    hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    dir = await mkdtemp(join(scratchRoot(), "bk-rel-fuzz-"));
    store = await openStore(`sqlite://${join(dir, "bridge.db")}`);
    const config = testConfig(hs.url);
    config.appservice.maxBodyBytes = 64 * 1024;
    bridge = new Bridge({ config, registration, adapter, store, logger: silentLogger() });
    await bridge.start();
    base = `http://127.0.0.1:${bridge.listeningPort}`;
    for (const room of ["lobby", "dev"]) portalRooms.push((await adapter.ctx!.portals.ensure(room)).roomId);
  });

  after(async () => {
    await bridge.stop();
    await store.close();
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  });

  const deliveredIds = () =>
    new Set(
      adapter.calls.flatMap((c) => {
        const id = (c.args[0] as { eventId?: unknown } | undefined)?.eventId;
        return typeof id === "string" ? [id] : [];
      }),
    );

  function assertCleanError(res: request.Response, what: string): void {
    assert.ok(EXPECTED.has(res.status), `${what}: status ${res.status} ${res.text.slice(0, 300)}`);
    if (res.status !== 200 && res.text !== "") {
      const body = res.body as { errcode?: unknown; error?: unknown };
      assert.equal(typeof body.errcode, "string", `${what}: errcode in ${res.text.slice(0, 200)}`);
      assert.equal(typeof body.error, "string", `${what}: error`);
      assert.ok(!res.text.includes(registration.hs_token) && !res.text.includes(registration.as_token), what);
      assert.doesNotMatch(res.text, /\n\s+at /, `${what}: a stack trace`);
    }
  }

  it("requests that must all be refused change nothing: store files, adapter and homeserver untouched", async (t) => {
    const before = storeDigest(dir, "bridge.db");
    const calls = adapter.calls.length;
    const hsRequests = hs.requests.length;
    let sent = 0;
    const isTransaction = (raw: string | Buffer) => {
      try {
        const v = JSON.parse(raw.toString()) as { events?: unknown };
        return typeof v === "object" && v !== null && Array.isArray(v.events);
      } catch {
        return false;
      }
    };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
          fc.constant(`{"events": [${"1,".repeat(40_000)}1]}`), // over the body limit
        ),
        fc.constantFrom<Record<string, string>>(
          auth,
          auth,
          {},
          { Authorization: "Bearer wrong" },
          { Authorization: `Bearer ${registration.as_token}` },
        ),
        async (raw, creds) => {
          if (creds === auth && isTransaction(raw)) return; // might be a valid transaction
          const res = await request(base)
            .put(`/_matrix/app/v1/transactions/refused-${n++}`)
            .set(creds)
            .set("Content-Type", "application/json")
            .send(raw);
          assertCleanError(res, `body ${JSON.stringify(raw.toString().slice(0, 80))}`);
          assert.notEqual(res.status, 200);
          sent++;
        },
      ),
      { numRuns: 800, seed: random.seed },
    );
    // Queries outside the namespaces, and for things that are not ids, are refused too.
    for (const path of [
      "/_matrix/app/v1/users/@someone:elsewhere.org",
      "/_matrix/app/v1/users/not-a-user",
      "/_matrix/app/v1/rooms/%23other_room:example.org",
      "/_matrix/app/v1/rooms/%23",
      "/_matrix/app/v1/thirdparty/protocol/nope",
    ]) {
      const res = await request(base).get(path).set(auth);
      assertCleanError(res, path);
      sent++;
    }
    t.diagnostic(`fuzz: ${sent} refused requests; store files unchanged; adapter and homeserver not called`);
    assert.equal(storeDigest(dir, "bridge.db"), before, "the store changed");
    assert.equal(adapter.calls.length, calls, "the adapter was called");
    assert.equal(hs.requests.length, hsRequests, "the homeserver was called");
  });

  /** A valid transaction in the portal rooms, event ids tagged; `junk` makes some contents odd. */
  function validEvents(tag: string, count: number): Array<Record<string, unknown>> {
    return Array.from({ length: count }, (_, i) => ({
      event_id: `$${tag}-${i}:${DOMAIN}`,
      room_id: portalRooms[i % portalRooms.length],
      type: "m.room.message",
      sender: `@alice:${DOMAIN}`,
      origin_server_ts: 1_700_000_000_000 + i,
      content: { msgtype: "m.text", body: `fuzz ${tag} ${i}` },
    }));
  }

  const ODD_CONTENT: Array<[string, Record<string, unknown>]> = [
    ["m.room.message", { body: 42 }],
    ["m.room.message", { msgtype: { x: 1 }, body: "x" }],
    ["m.room.message", { msgtype: "m.text", body: "x", "m.relates_to": "junk" }],
    ["m.room.message", { msgtype: "m.text", body: "x", "m.relates_to": { rel_type: "m.replace" } }],
    [
      "m.room.message",
      {
        msgtype: "m.text",
        body: "* x",
        "m.new_content": 5,
        "m.relates_to": { rel_type: "m.replace", event_id: 7 },
      },
    ],
    ["m.room.message", { msgtype: "m.image", body: "x", url: { not: "a url" } }],
    [
      "m.room.message",
      { msgtype: "m.text", body: "x", "m.relates_to": { "m.in_reply_to": { event_id: null } } },
    ],
    ["m.room.message", { msgtype: "m.text", format: "org.matrix.custom.html", formatted_body: 5, body: "x" }],
    ["m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: "$nope", key: 5 } }],
    ["m.reaction", { "m.relates_to": [] }],
    ["m.room.redaction", { redacts: 5 }],
    ["m.room.redaction", {}],
    ["m.sticker", { body: null, url: 5 }],
  ];

  it("mutated transactions in portal rooms: 200 (handled or ignored) or 400 with nothing kept, never 500", async (t) => {
    let accepted = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.nat({ max: 5 }),
        fc.nat({ max: ODD_CONTENT.length - 1 }),
        fc.nat({ max: 1000 }),
        fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.constant(null)),
        async (count, how, odd, pick, junk) => {
          const tag = `m${n++}`;
          const events = validEvents(tag, count);
          const target = events[pick % count]!;
          if (how === 0) target.content = ODD_CONTENT[odd]![1];
          if (how === 0) target.type = ODD_CONTENT[odd]![0];
          if (how === 1) target[["event_id", "room_id", "type", "sender", "content"][pick % 5]!] = junk;
          if (how === 2) delete target[["event_id", "room_id", "type", "sender", "content"][pick % 5]!];
          if (how === 3) target.state_key = junk;
          if (how === 4) target.unsigned = junk;
          const txnId = `fuzz-${tag}`;
          const res = await request(base)
            .put(`/_matrix/app/v1/transactions/${txnId}`)
            .set(auth)
            .send({ events });
          assertCleanError(res, `${tag} (mutation ${how}) ${JSON.stringify(target).slice(0, 200)}`);
          assert.ok(res.status === 200 || res.status === 400, `${tag}: status ${res.status}: ${res.text}`);
          if (res.status === 200) {
            accepted++;
            return;
          }
          rejected++;
          await bridge.appservice.drain(); // a 200 means recorded; handling follows it
          const ids = deliveredIds();
          const tagged = [...ids].filter((id) => id.startsWith(`$${tag}-`));
          assert.deepEqual(tagged, [], `${tag}: events of a rejected transaction reached the adapter`);
          // Nothing was recorded: the good copy under the same txnId delivers every event.
          const good = validEvents(tag, count);
          const retry = await request(base)
            .put(`/_matrix/app/v1/transactions/${txnId}`)
            .set(auth)
            .send({ events: good });
          assert.equal(retry.status, 200, `${tag}: the good copy: ${retry.text}`);
          await bridge.appservice.drain();
          const now = deliveredIds();
          for (const e of good)
            assert.ok(now.has(e.event_id as string), `${tag}: ${String(e.event_id)} not delivered`);
        },
      ),
      { numRuns: 700, seed: random.seed },
    );
    t.diagnostic(
      `fuzz: 700 mutated transactions in portal rooms: ${accepted} accepted, ${rejected} rejected with 400`,
    );
    assert.ok(accepted > 50 && rejected > 50, `accepted ${accepted}, rejected ${rejected}`);
    const health = await request(base).get("/health");
    assert.equal(health.status, 200, "still healthy");
  });
});
