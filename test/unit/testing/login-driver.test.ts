// LoginDriver and RecordingSessionContext (matrix-bridgekit/testing): an adapter's login flow
// driven through the framework's step machine without a homeserver, and its session connected
// with a context that records what it sends. The adapter is the logins fake of the bridge tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoginDriver, logIn, RecordingSessionContext } from "../../../src/testing/index.js";
import { testCall } from "../../../src/testing/recording-context.js";
import { FakeNetwork, type FakeSession, loginsAdapter } from "../../support/fake-network.js";

function network(): FakeNetwork {
  const n = new FakeNetwork();
  n.addAccount("alice", "pw");
  return n;
}

describe("LoginDriver", () => {
  it("walks a password flow to its complete step and connects a session bound to the login", async () => {
    const net = network();
    const driver = new LoginDriver(loginsAdapter(net).logins!, { userId: "@al:example.org" });
    const first = await driver.start();
    assert.equal(first.type, "user_input");
    const done = await driver.submit({ username: "alice", password: "pw" });
    assert.equal(done.type, "complete");
    assert.equal(driver.completed?.id, "alice");
    const { session, ctx, login } = await driver.connect();
    assert.deepEqual([login.id, login.userId, login.name], ["alice", "@al:example.org", "alice on fake"]);
    assert.equal(ctx.login, login);
    await session.onMessage!(
      {
        eventId: "$1",
        sender: { userId: "@al:example.org", displayName: "Al" },
        ts: 1,
        msgtype: "m.text",
        body: "hi",
        raw: {} as never,
      },
      ctx.portal("lobby"),
      testCall(),
    );
    assert.deepEqual(net.sent, [{ as: "alice", room: "lobby", text: "hi" }]);
    assert.equal((net.sessions.get("alice") as FakeSession).ctx, ctx);
  });

  it("checks fields before the adapter and says what the user would read", async () => {
    const net = network();
    const driver = new LoginDriver(loginsAdapter(net).logins!);
    await driver.start("password");
    await assert.rejects(
      driver.submit({ username: "Alice!", password: "pw" }),
      /"Alice!" is not a valid Username/,
    );
    await driver.start("password");
    await assert.rejects(
      driver.submit({ username: "alice" }),
      /the field "password" \(Password\) is missing/,
    );
    await driver.start("password");
    await assert.rejects(
      driver.submit({ username: "alice", password: "nope" }),
      /^UserFacingError: login failed: wrong username or password$/,
    );
    await assert.rejects(driver.start("sms"), /there is no login flow "sms"; the flows are: password, qr/);
    await assert.rejects(driver.connect(), /the login is not complete/);
  });

  it("waits on a display_and_wait step until the remote side moves on", async () => {
    const net = network();
    const driver = new LoginDriver(loginsAdapter(net).logins!);
    const qr = await driver.start("qr");
    assert.equal(qr.type, "display_and_wait");
    const code = qr.type === "display_and_wait" ? qr.display?.data : undefined;
    const waiting = driver.wait();
    assert.ok(net.scan(String(code), "alice"));
    assert.equal((await waiting).type, "complete");
    assert.equal(driver.completed?.id, "alice");
  });

  it("logIn: answers in turn and connects; a refused connect rejects as connect does", async () => {
    const net = network();
    const { login } = await logIn(loginsAdapter(net).logins!, [{ username: "alice", password: "pw" }]);
    assert.equal(login.id, "alice");
    net.revoked.add("alice");
    await assert.rejects(
      logIn(loginsAdapter(net).logins!, [{ username: "alice", password: "pw" }]),
      /the token was revoked/,
    );
  });
});

describe("RecordingSessionContext", () => {
  it("records states and login updates", async () => {
    const ctx = new RecordingSessionContext({ id: "a", userId: "@a:example.org", name: "a", data: { t: 1 } });
    ctx.setState("transient_disconnect", "lost");
    await ctx.updateLogin({ data: { t: 2 } });
    assert.deepEqual(ctx.states, [{ state: "transient_disconnect", message: "lost" }]);
    assert.deepEqual(ctx.login.data, { t: 2 });
    assert.deepEqual(
      ctx.calls.map((c) => c.method),
      ["setState", "updateLogin"],
    );
  });
});
