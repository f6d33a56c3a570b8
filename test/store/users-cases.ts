// UserStore's contract as a function over a backend: the unit suite runs it on memory and
// sqlite, the store suite on PostgreSQL and Redis.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Store } from "../../src/store/index.js";
import { UserFacingError } from "../../src/users/errors.js";
import { SecretBox, UserStore, type LoginRecord } from "../../src/users/index.js";
import { openTestStore, reopenTestStore, type Backend } from "./backends.js";
import { withStore } from "./repository-cases.js";
import { failingNamespace, WRITE_OPS } from "../support/failing-store.js";

const KEY = "users-cases key: correct horse battery";
const OTHER_KEY = "users-cases other key: tr0ub4dor&3";
const box = SecretBox.fromKey(KEY);
const otherBox = SecretBox.fromKey(OTHER_KEY);
const PASSWORD = "pw-hunter2-never-at-rest";
const TOKEN = "syt_double_puppet_token_never_at_rest";

/** A view of `store` whose writes to one namespace fail: a crash just before that write. */
function crashingAt(store: Store, namespace: string): Store {
  return failingNamespace(store, namespace, WRITE_OPS, () => new Error(`crash before writing ${namespace}`));
}

/** What is stored under a key, as text, to look for secrets in. */
async function raw(store: Store, namespace: string, key: string): Promise<string> {
  return JSON.stringify(await store.namespace<unknown>(namespace).get(key)) ?? "";
}

async function all(users: UserStore): Promise<LoginRecord[]> {
  const logins: LoginRecord[] = [];
  for await (const login of users.allLogins()) logins.push(login);
  return logins;
}

const ids = (logins: LoginRecord[]) => logins.map((l) => l.id);

/** Asserts a rejection whose message matches and names no key. */
async function rejectsNamingNoKey(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.match(err.message, message);
    assert.ok(!err.message.includes(KEY) && !err.message.includes(OTHER_KEY), "no key in the error");
    return true;
  });
}

export function userStoreCases(backend: Backend): void {
  describe(`UserStore on ${backend.name}`, () => {
    const store = withStore(backend);

    it("creates a user once and reads it back", async () => {
      const users = new UserStore(store());
      assert.equal(await users.getUser("@a:x"), undefined);
      const before = Date.now();
      const [first, second] = await Promise.all([users.ensureUser("@a:x"), users.ensureUser("@a:x")]);
      assert.deepEqual(first, { userId: "@a:x", createdAt: first.createdAt });
      assert.ok(first.createdAt >= before);
      assert.deepEqual(second, first);
      assert.deepEqual(await users.getUser("@a:x"), first);
      await assert.rejects(users.ensureUser(""), /userId must be a non-empty string/);
    });

    it("keeps one management room per user and one user per room", async () => {
      const users = new UserStore(store());
      await users.setManagementRoom("@m:x", "!m1:x");
      assert.equal(await users.userByManagementRoom("!m1:x"), "@m:x");
      assert.equal((await users.getUser("@m:x"))?.managementRoom, "!m1:x", "the user is created");
      await users.setManagementRoom("@m:x", "!m2:x");
      assert.equal(await users.userByManagementRoom("!m1:x"), undefined, "the old room is released");
      assert.equal(await users.userByManagementRoom("!m2:x"), "@m:x");
      await users.setManagementRoom("@n:x", "!m2:x");
      assert.equal(await users.userByManagementRoom("!m2:x"), "@n:x", "the room moved");
      assert.equal((await users.getUser("@m:x"))?.managementRoom, undefined, "and left its first user");
      await users.setManagementRoom("@n:x", undefined);
      assert.equal(await users.userByManagementRoom("!m2:x"), undefined);
      assert.deepEqual(Object.keys((await users.getUser("@n:x")) ?? {}).sort(), ["createdAt", "userId"]);
      await users.setManagementRoom("@nobody:x", undefined);
      assert.equal(await users.getUser("@nobody:x"), undefined, "clearing creates no user");
      // Index entries the records do not confirm (a crash between the two writes) read as none.
      await store().namespace<string>("users.by-room").set("!stale:x", "@m:x");
      await store().namespace<string>("users.by-room").set("!orphan:x", "@never:x");
      assert.equal(await users.userByManagementRoom("!stale:x"), undefined);
      assert.equal(await users.userByManagementRoom("!orphan:x"), undefined);
      await users.setManagementRoom("@m:x", "!stale:x");
      assert.equal(await users.userByManagementRoom("!stale:x"), "@m:x");
    });

    it("keeps a double-puppet token, set and cleared", async () => {
      const users = new UserStore(store());
      assert.equal(await users.getDoublePuppetToken("@d:x"), undefined);
      await users.setDoublePuppetToken("@d:x", "tok1");
      assert.equal(await users.getDoublePuppetToken("@d:x"), "tok1");
      assert.equal((await users.getUser("@d:x"))?.doublePuppetToken, "tok1");
      assert.ok((await raw(store(), "users", "@d:x")).includes("tok1"), "without a key, stored as written");
      await users.setDoublePuppetToken("@d:x", undefined);
      assert.equal(await users.getDoublePuppetToken("@d:x"), undefined);
      await users.setDoublePuppetToken("@nobody2:x", undefined);
      assert.equal(await users.getUser("@nobody2:x"), undefined);
    });

    it("stores logins in creation order and updates them in place", async () => {
      const users = new UserStore(store());
      const l1 = await users.putLogin({ id: "l1", userId: "@l:x", name: "one", data: { n: 1 } });
      assert.deepEqual(l1, {
        id: "l1",
        userId: "@l:x",
        name: "one",
        data: { n: 1 },
        createdAt: l1.createdAt,
        updatedAt: l1.createdAt,
      });
      assert.deepEqual(await users.getLogin("l1"), l1);
      assert.ok(await users.getUser("@l:x"), "its user is created");
      await users.putLogin({ id: "l2", userId: "@l:x", name: "two", data: null });
      await users.putLogin({ id: "l3", userId: "@other:x", name: "three", data: "x" });
      await new Promise((resolve) => setTimeout(resolve, 2));
      const updated = await users.putLogin({ id: "l1", userId: "@l:x", name: "one'", data: { n: 2 } });
      assert.equal(updated.createdAt, l1.createdAt);
      assert.ok(updated.updatedAt > l1.updatedAt);
      assert.deepEqual(await users.getLogin("l1"), updated);
      assert.deepEqual(ids(await users.loginsOf("@l:x")), ["l1", "l2"], "an update keeps its place");
      assert.deepEqual(await users.loginsOf("@other:x"), [await users.getLogin("l3")]);
      assert.deepEqual(await users.loginsOf("@unknown:x"), []);
      assert.equal(await users.getLogin("nope"), undefined);
      await assert.rejects(users.putLogin({ id: "", userId: "@l:x", name: "", data: 1 }), /login id must be/);
    });

    it("refuses another user's remote account, leaving it as it was", async () => {
      const users = new UserStore(store());
      const mine = await users.putLogin({ id: "acct", userId: "@c1:x", name: "mine", data: 1 });
      await assert.rejects(
        users.putLogin({ id: "acct", userId: "@c2:x", name: "theirs", data: 2 }),
        (err) => {
          assert.ok(err instanceof UserFacingError);
          assert.equal(err.code, "conflict");
          assert.equal(err.message, "remote account acct is already logged in by another Matrix user");
          return true;
        },
      );
      assert.deepEqual(await users.getLogin("acct"), mine);
      assert.deepEqual(await users.loginsOf("@c2:x"), []);
      const race = await Promise.allSettled([
        users.putLogin({ id: "raced", userId: "@c1:x", name: "a", data: 1 }),
        users.putLogin({ id: "raced", userId: "@c2:x", name: "b", data: 2 }),
      ]);
      assert.deepEqual(
        race.map((r) => r.status),
        ["fulfilled", "rejected"],
        "concurrent puts: one owner",
      );
      assert.equal(await users.deleteLogin("acct"), true);
      await users.putLogin({ id: "acct", userId: "@c2:x", name: "theirs", data: 2 });
      assert.deepEqual(ids(await users.loginsOf("@c1:x")), ["raced"], "logged out there");
      assert.deepEqual(ids(await users.loginsOf("@c2:x")), ["acct"], "and in here");
    });

    it("deletes a login and its index entries", async () => {
      const users = new UserStore(store());
      const first = await users.putLogin({ id: "del", userId: "@del:x", name: "d", data: 1 });
      await users.putLogin({ id: "kept", userId: "@del:x", name: "k", data: 1 });
      assert.equal(await users.deleteLogin("del"), true);
      assert.equal(await users.deleteLogin("del"), false);
      assert.equal(await users.getLogin("del"), undefined);
      assert.deepEqual(ids(await users.loginsOf("@del:x")), ["kept"]);
      assert.ok(!ids(await all(users)).includes("del"));
      await new Promise((resolve) => setTimeout(resolve, 2));
      const again = await users.putLogin({ id: "del", userId: "@del:x", name: "d", data: 1 });
      assert.ok(again.createdAt > first.createdAt, "a new login");
      assert.deepEqual(ids(await users.loginsOf("@del:x")), ["kept", "del"]);
    });

    it("skips index entries a crash left without their record", async () => {
      const users = new UserStore(store());
      await assert.rejects(
        new UserStore(crashingAt(store(), "logins")).putLogin({
          id: "half",
          userId: "@h1:x",
          name: "h",
          data: 1,
        }),
        /crash before writing logins/,
      );
      assert.equal(await users.getLogin("half"), undefined);
      assert.deepEqual(await users.loginsOf("@h1:x"), []);
      assert.ok(!ids(await all(users)).includes("half"));
      // The id is free: another user takes it; the first user's stale entry stays hidden.
      await users.putLogin({ id: "half", userId: "@h2:x", name: "h", data: 2 });
      assert.deepEqual(await users.loginsOf("@h1:x"), []);
      assert.deepEqual(ids(await users.loginsOf("@h2:x")), ["half"]);
      assert.equal(ids(await all(users)).filter((id) => id === "half").length, 1);
      // The first user's next login drops the stale id from their list.
      await users.putLogin({ id: "h1-own", userId: "@h1:x", name: "o", data: 1 });
      assert.deepEqual(await store().namespace<string[]>("logins.index").get("user:@h1:x"), ["h1-own"]);
      // A crash in deleteLogin after the record went: the login is gone for every reader.
      await assert.rejects(new UserStore(crashingAt(store(), "logins.index")).deleteLogin("h1-own"), /crash/);
      assert.deepEqual(await users.loginsOf("@h1:x"), []);
      assert.ok(!ids(await all(users)).includes("h1-own"));
    });

    it("seals login data and double-puppet tokens at rest, bound to their record", async () => {
      const users = new UserStore(store(), box);
      const login = await users.putLogin({
        id: "s1",
        userId: "@s:x",
        name: "s",
        data: { password: PASSWORD },
      });
      await users.putLogin({ id: "s2", userId: "@s:x", name: "s", data: { password: "other" } });
      await users.setDoublePuppetToken("@s:x", TOKEN);
      const atRest = (await raw(store(), "logins", "s1")) + (await raw(store(), "users", "@s:x"));
      assert.ok(!atRest.includes(PASSWORD) && !atRest.includes(TOKEN), atRest);
      assert.match(atRest, /"\$sealed":1/);
      assert.deepEqual(await users.getLogin("s1"), login);
      assert.equal(await users.getDoublePuppetToken("@s:x"), TOKEN);
      assert.equal((await users.getUser("@s:x"))?.doublePuppetToken, TOKEN);
      assert.deepEqual((await users.loginsOf("@s:x"))[0], login);
      // Sealed data copied onto another login does not open there.
      const logins = store().namespace<Record<string, unknown>>("logins");
      const [s1, s2] = await logins.getMany(["s1", "s2"]);
      await logins.set("s2", { ...s2, sealedData: s1?.sealedData ?? null });
      await rejectsNamingNoKey(users.getLogin("s2"), /^login s2 data: the sealed data does not authenticate/);
      await users.deleteLogin("s2");
    });

    it("reads plain records written without a key and seals them on their next write", async () => {
      await new UserStore(store()).putLogin({
        id: "p1",
        userId: "@p:x",
        name: "p",
        data: { password: PASSWORD },
      });
      await new UserStore(store()).setDoublePuppetToken("@p:x", TOKEN);
      const atRest = async () => (await raw(store(), "logins", "p1")) + (await raw(store(), "users", "@p:x"));
      assert.ok((await atRest()).includes(PASSWORD) && (await atRest()).includes(TOKEN), "written plain");
      const users = new UserStore(store(), box);
      assert.deepEqual((await users.getLogin("p1"))?.data, { password: PASSWORD });
      assert.equal(await users.getDoublePuppetToken("@p:x"), TOKEN);
      await users.putLogin({ id: "p1", userId: "@p:x", name: "renamed", data: { password: PASSWORD } });
      await users.setManagementRoom("@p:x", "!p:x");
      const after = await atRest();
      assert.ok(!after.includes(PASSWORD) && !after.includes(TOKEN), after);
      const renamed = await users.getLogin("p1");
      assert.equal(renamed?.name, "renamed");
      assert.deepEqual(renamed?.data, { password: PASSWORD });
      assert.equal(await users.getDoublePuppetToken("@p:x"), TOKEN);
    });

    it("names the key when sealed data cannot be opened", async () => {
      const users = new UserStore(store(), box);
      await users.putLogin({ id: "w1", userId: "@w:x", name: "w", data: { password: PASSWORD } });
      await users.setDoublePuppetToken("@w:x", TOKEN);
      const source = /logins\.encryptionKey \(env BRIDGEKIT_LOGINS_ENCRYPTION_KEY\)/.source;
      const wrong = new UserStore(store(), otherBox);
      await rejectsNamingNoKey(
        wrong.getLogin("w1"),
        new RegExp(`^login w1 data: the data was sealed with another ${source}`),
      );
      await rejectsNamingNoKey(
        wrong.getDoublePuppetToken("@w:x"),
        new RegExp(`^the double-puppet token of @w:x: the data was sealed with another ${source}`),
      );
      const keyless = new UserStore(store());
      await rejectsNamingNoKey(
        keyless.getLogin("w1"),
        new RegExp(`^login w1 data is encrypted, and no ${source} is configured`),
      );
      await rejectsNamingNoKey(keyless.getUser("@w:x"), /^the double-puppet token of @w:x is encrypted/);
      await rejectsNamingNoKey(all(wrong), /data: the data was sealed with another logins\.encryptionKey/);
      assert.equal(
        await keyless.userByManagementRoom("!none:x"),
        undefined,
        "what is not sealed still reads",
      );
    });

    it("enumerates 2,000 logins exactly once each, from the index", async () => {
      const s = await openTestStore(backend, { fresh: true });
      try {
        const users = new UserStore(s);
        const count = 2_000;
        await Promise.all(
          Array.from({ length: count }, (_, i) =>
            users.putLogin({ id: `acct-${i}`, userId: `@u${i % 40}:x`, name: `n${i}`, data: i }),
          ),
        );
        const seen = new Map<string, number>();
        for await (const login of users.allLogins()) seen.set(login.id, (seen.get(login.id) ?? 0) + 1);
        assert.equal(seen.size, count);
        assert.ok(
          [...seen.values()].every((n) => n === 1),
          "each once",
        );
        assert.deepEqual(
          ids(await users.loginsOf("@u7:x")),
          Array.from({ length: count / 40 }, (_, i) => `acct-${i * 40 + 7}`),
        );
        // Spread over the buckets: adding a login rewrites one small key.
        const buckets = await s
          .namespace<string[]>("logins.index")
          .getMany(Array.from({ length: 64 }, (_, n) => `bucket:${n}`));
        const sizes = buckets.map((b) => b?.length ?? 0);
        assert.equal(
          sizes.reduce((a, b) => a + b),
          count,
        );
        assert.ok(Math.max(...sizes) < 80, `bucket sizes ${sizes.join(" ")}`);
        for (let i = 0; i < 100; i++) await users.deleteLogin(`acct-${i}`);
        assert.equal((await all(users)).length, count - 100);
      } finally {
        await s.close();
      }
    });

    if (backend.persistent)
      it("persists across close and reopen", async () => {
        const s = await openTestStore(backend, { fresh: true });
        const users = new UserStore(s, box);
        await users.setManagementRoom("@r:x", "!r:x");
        await users.setDoublePuppetToken("@r:x", TOKEN);
        const login = await users.putLogin({
          id: "r1",
          userId: "@r:x",
          name: "r",
          data: { password: PASSWORD },
        });
        const user = await users.getUser("@r:x");
        await s.close();
        const reopened = await reopenTestStore(backend, s);
        try {
          const again = new UserStore(reopened, SecretBox.fromKey(KEY));
          assert.deepEqual(await again.getUser("@r:x"), user);
          assert.equal(await again.userByManagementRoom("!r:x"), "@r:x");
          assert.deepEqual(await again.loginsOf("@r:x"), [login]);
          assert.deepEqual(await all(again), [login]);
        } finally {
          await reopened.close();
        }
      });
  });
}
