import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Login, LoginsCapability, RemoteSession, SessionContext } from "../../../src/adapter/index.js";
import { PermanentError } from "../../../src/adapter/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import { openStore, type Store } from "../../../src/store/index.js";
import { testCall } from "../../../src/testing/index.js";
import { Logins, type LiveLogin } from "../../../src/users/logins.js";
import { UserStore } from "../../../src/users/user-store.js";

class Session implements RemoteSession {
  disconnects = 0;
  loggedOut = 0;
  disconnect() {
    this.disconnects++;
    return Promise.resolve();
  }
  logout() {
    this.loggedOut++;
    return Promise.resolve();
  }
}

interface Setup {
  logins: Logins;
  users: UserStore;
  store: Store;
  told: Array<[string, string]>;
  sessions: Map<string, Session>;
  connected: { count: number };
}

/** Logins over a memory store; `connect` decides per login what connecting does. */
async function setup(
  connect: (login: Login, ctx: SessionContext) => Promise<RemoteSession>,
  opts: { concurrency?: number } = {},
): Promise<Setup> {
  const store = await openStore("memory://");
  const users = new UserStore(store);
  const told: Array<[string, string]> = [];
  const sessions = new Map<string, Session>();
  const connected = { count: 0 };
  const capability: LoginsCapability = {
    flows: [],
    start: () => {
      throw new Error("unused");
    },
    connect: async (login, ctx) => {
      const session = await connect(login, ctx);
      if (session instanceof Session) sessions.set(login.id, session);
      return session;
    },
  };
  const logins: Logins = new Logins({
    capability,
    store: users,
    contextFor: (login: LiveLogin) => ({ login }) as unknown as SessionContext,
    tell: (userId, text) => {
      told.push([userId, text]);
      return Promise.resolve();
    },
    onConnected: () => void connected.count++,
    log: silentLogger(),
    concurrency: opts.concurrency ?? 4,
    retry: { firstDelayMs: 10, maxDelayMs: 40 },
  });
  return { logins, users, store, told, sessions, connected };
}

async function waitFor(what: string, ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("Logins", () => {
  it("connects every stored login at start, never more at once than the concurrency", async () => {
    let running = 0;
    let most = 0;
    const s = await setup(
      async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return new Session();
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 20; i++)
      await s.users.putLogin({ id: `l${i}`, userId: `@u${i}:x`, name: `l${i}`, data: {} });
    assert.deepEqual(await s.logins.startAll(), { connected: 20, failed: 0 });
    assert.ok(most <= 3 && most > 1, `at most 3 at once, saw ${most}`);
    assert.equal(s.logins.size, 20);
    assert.equal(s.logins.connectedOf("@u7:x").login?.id, "l7");
    await s.store.close();
  });

  it("retries a login that could not connect, with backoff, until it does", async () => {
    let attempts = 0;
    const s = await setup(() =>
      ++attempts < 3 ? Promise.reject(new Error("down")) : Promise.resolve(new Session()),
    );
    await s.users.putLogin({ id: "a", userId: "@a:x", name: "a", data: {} });
    assert.deepEqual(await s.logins.startAll(), { connected: 0, failed: 1 });
    const status = (await s.logins.of("@a:x"))[0]!;
    assert.equal(status.state, "transient_disconnect");
    assert.equal(s.logins.connectedOf("@a:x").pending, true, "events wait for it");
    await waitFor("the third attempt", () => s.logins.get("a")?.state === "connected");
    assert.equal(attempts, 3);
    assert.equal(s.connected.count, 1, "rooms waiting for it are woken");
    assert.deepEqual(s.told, [], "a transient failure is not worth a message");
    await s.logins.stopAll();
    await s.store.close();
  });

  it("marks bad credentials and tells the user, without retrying", async () => {
    let attempts = 0;
    const s = await setup(() => {
      attempts++;
      return Promise.reject(new PermanentError("the password changed"));
    });
    await s.users.putLogin({ id: "a", userId: "@a:x", name: "a on net", data: {} });
    await s.logins.startAll();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(attempts, 1);
    assert.equal(s.logins.get("a")?.state, "bad_credentials");
    assert.deepEqual(s.logins.connectedOf("@a:x"), { pending: false });
    assert.deepEqual(s.told, [
      [
        "@a:x",
        "Your login a on net needs you to log in again: the password changed. Send `login` to log in again.",
      ],
    ]);
    await s.store.close();
  });

  it("closes a session that reports it was logged out, and tells the user", async () => {
    let ctx!: SessionContext & { login: LiveLogin };
    const s = await setup((_login, c) => {
      ctx = c as SessionContext & { login: LiveLogin };
      return Promise.resolve(new Session());
    });
    await s.logins.add("@a:x", { id: "a", data: {} });
    s.logins.setState(ctx.login, "logged_out", "signed out on another device");
    await waitFor("the notice", () => s.told.length === 1);
    assert.equal(s.sessions.get("a")!.disconnects, 1);
    assert.equal(s.logins.get("a")?.state, "logged_out");
    assert.match(s.told[0]![1], /was logged out: signed out on another device/);
    await s.store.close();
  });

  it("logs out on the remote side, disconnects and forgets", async () => {
    const s = await setup(() => Promise.resolve(new Session()));
    await s.logins.add("@a:x", { id: "a", data: { token: "t" } });
    const session = s.sessions.get("a")!;
    await s.logins.logout("a", testCall());
    assert.equal(session.loggedOut, 1);
    assert.equal(session.disconnects, 1);
    assert.equal(s.logins.get("a"), undefined);
    assert.deepEqual(await s.users.loginsOf("@a:x"), []);
    await s.store.close();
  });

  it("replaces a login logged in again: the old session closes, the new data is stored", async () => {
    const s = await setup(() => Promise.resolve(new Session()));
    await s.logins.add("@a:x", { id: "a", data: { token: "old" } });
    const old = s.sessions.get("a")!;
    await s.logins.add("@a:x", { id: "a", data: { token: "new" } });
    assert.equal(old.disconnects, 1);
    assert.notEqual(s.sessions.get("a"), old);
    assert.deepEqual((await s.users.getLogin("a"))?.data, { token: "new" });
    assert.equal(s.logins.liveOf("@a:x").length, 1);
    await s.store.close();
  });

  it("a session tells its user; one that lost its connection is closed and connected again with backoff", async () => {
    let ctx!: SessionContext & { login: LiveLogin };
    let connects = 0;
    const s = await setup((_login, c) => {
      ctx = c as SessionContext & { login: LiveLogin };
      connects++;
      return connects === 2
        ? Promise.reject(new Error("server unreachable"))
        : Promise.resolve(new Session());
    });
    await s.logins.add("@a:x", { id: "a", data: {} });
    const first = s.sessions.get("a")!;
    await s.logins.tell(ctx.login, "the nick a is in use: you are a_");
    assert.deepEqual(s.told, [["@a:x", "the nick a is in use: you are a_"]]);
    s.logins.reconnect(ctx.login, "connection reset");
    assert.equal(s.logins.get("a")?.state, "transient_disconnect");
    assert.equal(s.logins.get("a")?.message, "connection reset");
    s.logins.reconnect(ctx.login, "twice"); // a reconnect is already waiting: ignored
    await waitFor("the old session closed", () => first.disconnects === 1);
    await waitFor("connected again after a failed attempt", () => s.logins.get("a")?.state === "connected");
    assert.equal(connects, 3, "one failed attempt in between, retried with backoff");
    assert.notEqual(s.sessions.get("a"), first);
    assert.equal(first.disconnects, 1);
    await s.logins.logout("a", testCall());
    s.logins.reconnect(ctx.login, "after logout"); // ignored: the login is gone
    assert.equal(connects, 3);
    await s.store.close();
  });

  it("stores what a session updates", async () => {
    let ctx!: SessionContext & { login: LiveLogin };
    const s = await setup((_login, c) => {
      ctx = c as SessionContext & { login: LiveLogin };
      return Promise.resolve(new Session());
    });
    await s.logins.add("@a:x", { id: "a", data: { token: "1" } });
    await s.logins.update(ctx.login, { data: { token: "2" }, name: "renamed" });
    assert.deepEqual(await s.users.getLogin("a").then((l) => [l?.name, l?.data]), [
      "renamed",
      { token: "2" },
    ]);
    assert.deepEqual(ctx.login.data, { token: "2" });
    await s.store.close();
  });

  it("closes at once a session whose connect finished after the bridge stopped", async () => {
    let finish!: () => void;
    const late = new Session();
    const s = await setup(() => new Promise((r) => (finish = () => r(late))));
    await s.users.putLogin({ id: "a", userId: "@a:x", name: "a", data: {} });
    const started = s.logins.startAll();
    await waitFor("the connect", () => finish !== undefined);
    await s.logins.stopAll();
    finish();
    await started;
    assert.equal(late.disconnects, 1);
    assert.equal(s.logins.connectedOf("@a:x").login, undefined);
    await s.store.close();
  });
});
