// bridgekit logins: listing stored logins without their data, and forgetting them (those a
// lost or changed logins.encryptionKey made unreadable) while the bridge is stopped, telling
// their users in their management rooms.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run-cli.js";
import {
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../../../src/registration/index.js";
import { openStore } from "../../../src/store/index.js";
import { acquireWriterLease } from "../../../src/store/lease.js";
import { FakeHomeserver } from "../../../src/testing/fake-homeserver.js";
import { SecretBox } from "../../../src/users/secret-box.js";
import { type LoginSummary, UserStore } from "../../../src/users/user-store.js";
import { Logins } from "../../../src/users/logins.js";
import { silentLogger } from "../../../src/common/logger.js";

const KEY = "the key the bridge runs with today";
const OLD_KEY = "a key that was lost long ago....";

let dir: string;
let reg: Registration;
let hs: FakeHomeserver;
let config: string;
let room: string;
const dbUrl = () => `sqlite://${join(dir, "bridge.db")}`;

/** A fresh store: alice's login sealed with today's key, bob's with the lost one, carol's plain. */
async function seed(): Promise<void> {
  await rm(join(dir, "bridge.db"), { force: true });
  const store = await openStore(dbUrl());
  try {
    const today = new UserStore(store, SecretBox.fromKey(KEY));
    const lost = new UserStore(store, SecretBox.fromKey(OLD_KEY));
    const plain = new UserStore(store);
    await today.putLogin({
      id: "alice-acct",
      userId: "@alice:example.org",
      name: "Alice",
      data: { pw: "a" },
    });
    await lost.putLogin({
      id: "bob-acct",
      userId: "@bob:example.org",
      name: "Bob at work",
      data: { pw: "hunter2" },
    });
    await lost.setManagementRoom("@bob:example.org", room);
    await plain.putLogin({ id: "carol-acct", userId: "@carol:example.org", name: "Carol", data: { t: 1 } });
  } finally {
    await store.close();
  }
}

async function storedIds(): Promise<string[]> {
  const store = await openStore(dbUrl());
  try {
    const ids: string[] = [];
    for await (const login of new UserStore(store).loginSummaries()) ids.push(login.id);
    return ids.sort();
  } finally {
    await store.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-logins-"));
  reg = generateRegistration({
    id: "logins",
    url: "http://127.0.0.1:1",
    domain: "example.org",
    senderLocalpart: "bot",
    ghosts: "net_{id}",
  });
  await saveRegistration(join(dir, "registration.yaml"), reg);
  hs = await FakeHomeserver.start({ asToken: reg.as_token, domain: "example.org", botLocalpart: "bot" });
  room = hs.createRoomDirect("@bot:example.org");
  config = join(dir, "config.yaml");
  await writeFile(
    config,
    [
      `homeserver: { url: "${hs.url}", domain: example.org }`,
      `store: "${dbUrl()}"`,
      "bridge: { ghosts: 'net_{id}' }",
      "adapter: { module: ./none.js }",
      `logins: { encryptionKey: "${KEY}" }`,
      "lease: { ttlMs: 1000 }",
    ].join("\n"),
  );
});

after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(seed);

describe("bridgekit logins", () => {
  it("the bridge refuses to start on an unreadable login, naming it and the way out", async () => {
    const store = await openStore(dbUrl());
    try {
      const unused = () => {
        throw new Error("not called while loading");
      };
      const logins = new Logins({
        store: new UserStore(store, SecretBox.fromKey(KEY)),
        capability: { flows: [], start: unused, connect: unused },
        contextFor: unused,
        tell: () => Promise.resolve(),
        onConnected: () => undefined,
        log: silentLogger(),
        concurrency: 1,
      });
      await assert.rejects(logins.load(), (err: Error) => {
        assert.match(
          err.message,
          /login bob-acct data: the data was sealed with another logins\.encryptionKey/,
        );
        assert.match(err.message, /bridgekit logins forget --unreadable/);
        return true;
      });
    } finally {
      await store.close();
    }
  });

  it("list shows every login with its user and whether it opens, never its data", async () => {
    const { code, out } = await run("logins", "list", "--config", config);
    assert.equal(code, 0);
    assert.match(out, /^3 logins in the store sqlite:/);
    assert.match(out, /alice-acct {2}@alice:example\.org {2}"Alice"\n {2}updated \S+ {2}data sealed/);
    assert.match(out, /carol-acct {2}@carol:example\.org {2}"Carol"\n {2}updated \S+ {2}data plain/);
    assert.match(
      out,
      /bob-acct {2}@bob:example\.org {2}"Bob at work"\n {2}updated \S+ {2}data cannot be opened: .*another logins\.encryptionKey/,
    );
    assert.match(out, /1 cannot be opened with the configured key/);
    assert.doesNotMatch(out, /hunter2/);
    const json = await run("logins", "list", "--unreadable", "--json", "--config", config);
    const shown = JSON.parse(json.out) as LoginSummary[];
    assert.deepEqual(
      shown.map((l) => [l.id, l.sealed]),
      [["bob-acct", true]],
    );
    assert.equal(Object.hasOwn(shown[0]!, "data"), false);
  });

  it("forget --unreadable deletes only those and tells their users in their management room", async () => {
    const before = hs.events(room, "m.room.message").length;
    const { code, out } = await run("logins", "forget", "--unreadable", "--config", config);
    assert.equal(code, 0, out);
    assert.match(out, /forgot bob-acct \(of @bob:example\.org\)/);
    assert.match(out, /told @bob:example\.org in /);
    assert.deepEqual(await storedIds(), ["alice-acct", "carol-acct"]);
    const told = hs.events(room, "m.room.message").slice(before);
    assert.equal(told.length, 1);
    assert.equal(told[0]!.content.msgtype, "m.notice");
    assert.match(
      String(told[0]!.content.body),
      /removed your login "Bob at work": the stored credentials could no longer be read\. Send `login`/,
    );
    const again = await run("logins", "forget", "--unreadable", "--config", config);
    assert.equal(again.code, 0);
    assert.match(again.out, /no login is unreadable: nothing to forget/);
  });

  it("forget by id: a user without a management room is named for the operator; an unknown id fails", async () => {
    const { code, out } = await run("logins", "forget", "carol-acct", "nope", "--config", config);
    assert.equal(code, 1);
    assert.match(out, /forgot carol-acct \(of @carol:example\.org\)/);
    assert.match(out, /no login nope/);
    assert.match(
      out,
      /@carol:example\.org has no management room: tell them yourself that "Carol" must log in again/,
    );
    assert.deepEqual(await storedIds(), ["alice-acct", "bob-acct"]);
  });

  it("forget refuses while a bridge holds the store's writer lease, and changes nothing", async () => {
    const store = await openStore(dbUrl());
    const lease = await acquireWriterLease(dbUrl(), store, {
      prefix: store.prefix,
      ttlMs: 60_000,
      baseDir: dir,
    });
    try {
      const { code, err } = await run("logins", "forget", "--unreadable", "--config", config);
      assert.equal(code, 1);
      assert.match(err, /is in use by another bridge process/);
    } finally {
      await lease.release();
      await store.close();
    }
    assert.deepEqual(await storedIds(), ["alice-acct", "bob-acct", "carol-acct"]);
  });

  it("refuses wrong invocations with the usage", async () => {
    for (const args of [[], ["burn"], ["forget"], ["list", "x"], ["forget", "x", "--unreadable"]]) {
      const { code, err } = await run("logins", ...args, "--config", config);
      assert.equal(code, 2, args.join(" "));
      assert.match(err, /usage: bridgekit logins list\|forget/);
    }
  });
});
