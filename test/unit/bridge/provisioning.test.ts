// The provisioning API served by a whole Bridge (BridgeProvisioning over the same logins
// and login processes the management room uses), on the fake homeserver. The HTTP layer's
// own cases (auth, shapes, CORS, bodies) are in test/http/provisioning.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { DOMAIN, startHarness, type Harness } from "../../support/bridge-harness.js";
import { FakeNetwork, dmRoom, loginsAdapter } from "../../support/fake-network.js";

const SECRET = "provisioning-secret-0123";
const ALICE = `@alice:${DOMAIN}`;

async function withProvisioning(
  fn: (h: Harness<RemoteNetworkAdapter>, api: Api, network: FakeNetwork) => Promise<void>,
): Promise<void> {
  const network = new FakeNetwork();
  network.addAccount("alice", "pw");
  network.addAccount("bob", "pw2");
  const h = await startHarness<RemoteNetworkAdapter>({
    adapter: loginsAdapter(network),
    configure: (c) => {
      c.provisioning.sharedSecret = SECRET;
      c.permissions = { [DOMAIN]: "user", "*": "relay" };
    },
  });
  try {
    await fn(h, api(h), network);
  } finally {
    await h.stop();
  }
}

type Api = (
  method: "get" | "post",
  path: string,
  body?: unknown,
  user?: string,
) => Promise<{ status: number; body: Record<string, unknown> }>;

function api(h: Harness<RemoteNetworkAdapter>): Api {
  return async (method, path, body, user = ALICE) => {
    const url = `/_matrix/provision/v3${path}${path.includes("?") ? "&" : "?"}user_id=${encodeURIComponent(user)}`;
    const agent = request(h.bridge.appservice.app.callback());
    const req = (method === "get" ? agent.get(url) : agent.post(url)).set(
      "Authorization",
      `Bearer ${SECRET}`,
    );
    const res = await (body === undefined ? req : req.send(body as object));
    return { status: res.status, body: res.body as Record<string, unknown> };
  };
}

describe("the provisioning API of a running bridge", () => {
  it("logs a user in step by step, lists the login, and logs it out", async () => {
    await withProvisioning(async (h, call, network) => {
      const flows = await call("get", "/login/flows");
      assert.deepEqual(
        (flows.body.flows as Array<{ id: string }>).map((f) => f.id),
        ["password", "qr"],
      );
      const start = await call("post", "/login/start/password");
      assert.equal(start.status, 200);
      assert.equal(start.body.type, "user_input");
      const process = String(start.body.login_id);
      const wrong = await call("post", `/login/step/${process}/credentials/user_input`, {
        username: "alice",
        password: "nope",
      });
      assert.equal(wrong.status, 400);
      assert.match(String(wrong.body.error), /wrong username or password/);
      const again = await call("post", "/login/start/password");
      const done = await call("post", `/login/step/${String(again.body.login_id)}/credentials/user_input`, {
        username: "alice",
        password: "pw",
      });
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.deepEqual(done.body.complete, { user_login_id: "alice" });
      assert.ok(network.sessions.get("alice"), "the session is connected");
      assert.deepEqual((await call("get", "/logins")).body, { login_ids: ["alice"] });
      const whoami = await call("get", "/whoami");
      const logins = whoami.body.logins as Array<{ id: string; state: { state_event: string } }>;
      assert.deepEqual(
        logins.map((l) => [l.id, l.state.state_event]),
        [["alice", "CONNECTED"]],
      );
      assert.equal(whoami.body.bridge_bot, `@bot:${DOMAIN}`);
      assert.equal(whoami.body.command_prefix, "!fake");

      // Bob sees none of Alice's logins and cannot log hers out.
      assert.deepEqual((await call("get", "/logins", undefined, `@bob:${DOMAIN}`)).body, { login_ids: [] });
      const foreign = await call("post", "/logout/alice", {}, `@bob:${DOMAIN}`);
      assert.equal(foreign.status, 404);
      assert.ok(network.sessions.get("alice"), "still connected");

      assert.equal((await call("post", "/logout/alice", {})).status, 200);
      assert.equal(network.sessions.get("alice"), undefined);
      assert.deepEqual(await h.bridge.users.loginsOf(ALICE), []);
    });
  });

  it("refuses a login process to a user who may only be relayed", async () => {
    await withProvisioning(async (_h, call) => {
      const res = await call("post", "/login/start/password", {}, "@eve:elsewhere.net");
      assert.equal(res.status, 403);
    });
  });

  it("resolves a remote user and makes the DM portal with them", async () => {
    await withProvisioning(async (h, call, network) => {
      const start = await call("post", "/login/start/password");
      await call("post", `/login/step/${String(start.body.login_id)}/credentials/user_input`, {
        username: "alice",
        password: "pw",
      });
      const found = await call("get", "/resolve_identifier/bob");
      assert.equal(found.status, 200);
      assert.equal(found.body.id, "bob");
      assert.equal(found.body.mxid, h.bridge.ghosts.userId("bob"));
      assert.equal((await call("get", "/resolve_identifier/nobody")).status, 404);
      network.refusesDMs.add("bob");
      const refused = await call("post", "/create_dm/bob", {});
      assert.equal(refused.status, 400, "the adapter's refusal is the caller's answer, not a 500");
      assert.match(String(refused.body.error), /bob does not take direct messages/);
      network.refusesDMs.delete("bob");
      const dm = await call("post", "/create_dm/bob", {});
      assert.equal(dm.status, 201);
      const portal = await h.bridge.portals.get(dmRoom("alice", "bob"), "alice");
      assert.equal(dm.body.dm_room_mxid, portal?.roomId);
      const again = await call("post", "/create_dm/bob", {});
      assert.equal(again.status, 200, "the existing DM portal");
      assert.equal(again.body.dm_room_mxid, portal?.roomId);
    });
  });
});
