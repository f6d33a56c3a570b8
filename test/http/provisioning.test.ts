// The provisioning API (src/provisioning): mautrix-go bridgev2's paths, JSON shapes, errcodes
// and auth, against an in-process ProvisioningService that records its calls and a small
// homeserver that answers whoami and OpenID userinfo for the tokens a test gives it.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it, type TestContext } from "node:test";
import Koa from "koa";
import request from "supertest";
import type { LoginFlow, LoginInput, LoginStep, PermissionLevel } from "../../src/adapter/adapter.js";
import { createProvisioning, type ProvisioningOptions } from "../../src/provisioning/index.js";
import type {
  BridgeInfo,
  LoginSummary,
  ProvisioningCaller,
  ProvisioningService,
  ResolvedIdentifier,
  StepAnswer,
} from "../../src/provisioning/service.js";
import { UserFacingError } from "../../src/users/errors.js";
import {
  errcode,
  LogCapture,
  makeApp,
  RecordingHandlers,
  auth as hsAuth,
} from "../support/appservice/harness.js";
import { freePort } from "../support/net.js";

const SECRET = "provisioning-shared-secret-0123";
const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ADMIN = "@admin:example.org";
const RELAY = "@relay:example.org";
const EVE = "@eve:elsewhere.org"; // no permission at all
const ALICE_TOKEN = "syt_alice_access_token";
const BOB_TOKEN = "syt_bob_access_token";
const ADMIN_TOKEN = "syt_admin_access_token";
const ALICE_OPENID = "openid_alice_token";
const P = "/_matrix/provision/v3";

const FLOWS: LoginFlow[] = [
  { id: "password", name: "Password", description: "Log in with your nick and password" },
  { id: "qr", name: "QR code", description: "Scan a QR code" },
  { id: "cookies", name: "Web", description: "Log in in a web view" },
];

const BRIDGE: BridgeInfo = {
  networkName: "Example Net",
  networkId: "examplenet",
  networkIcon: "mxc://example.org/icon",
  networkUrl: "https://example.net",
  botUserId: "@examplebot:example.org",
  commandPrefix: "!examplenet",
  homeserver: "example.org",
};

interface Call {
  method: string;
  caller: ProvisioningCaller;
  args: unknown[];
}

/** A ProvisioningService that records its calls; `failWith` makes every call throw. */
class FakeService implements ProvisioningService {
  readonly calls: Call[] = [];
  readonly permissions = new Map<string, PermissionLevel>([
    [ALICE, "user"],
    [BOB, "user"],
    [ADMIN, "admin"],
    [RELAY, "relay"],
  ]);
  failWith: Error | undefined;

  permission(userId: string): PermissionLevel | null {
    return this.permissions.get(userId) ?? null;
  }
  bridgeInfo(): BridgeInfo {
    return BRIDGE;
  }
  flows(): readonly LoginFlow[] {
    return FLOWS;
  }
  managementRoom(caller: ProvisioningCaller): Promise<string | undefined> {
    return this.record("managementRoom", caller, () =>
      caller.userId === ALICE ? "!mgmt:example.org" : undefined,
    );
  }
  logins(caller: ProvisioningCaller): Promise<LoginSummary[]> {
    return this.record("logins", caller, () =>
      caller.userId === ALICE
        ? [
            {
              id: "alice-remote",
              name: "alice on example.net",
              state: "connected",
              stateSince: 1_700_000_000_999,
              profile: { name: "Alice", username: "alice", avatarUrl: "mxc://example.org/alice" },
            },
            {
              id: "alice-2",
              name: "alice2",
              state: "bad_credentials",
              stateMessage: "wrong password",
              stateSince: 1_700_000_100_000,
            },
          ]
        : [],
    );
  }
  startLogin(caller: ProvisioningCaller, flowId: string): Promise<StepAnswer> {
    return this.record(
      "startLogin",
      caller,
      () => {
        const step = FIRST_STEPS[flowId];
        if (!step) throw new UserFacingError("not_found", `there is no login flow ${flowId}`);
        return { processId: "proc-1", step };
      },
      flowId,
    );
  }
  submitLogin(
    caller: ProvisioningCaller,
    processId: string,
    stepId: string,
    input: LoginInput,
  ): Promise<StepAnswer> {
    return this.record(
      "submitLogin",
      caller,
      () => ({ processId, step: NEXT_STEPS[input.type] }),
      processId,
      stepId,
      input,
    );
  }
  cancelLogin(caller: ProvisioningCaller, processId: string): Promise<void> {
    return this.record("cancelLogin", caller, () => undefined, processId);
  }
  logout(caller: ProvisioningCaller, loginId: string): Promise<void> {
    return this.record("logout", caller, () => undefined, loginId);
  }
  resolveIdentifier(
    caller: ProvisioningCaller,
    identifier: string,
    opts: { createDM: boolean; loginId?: string },
  ): Promise<ResolvedIdentifier> {
    return this.record(
      "resolveIdentifier",
      caller,
      () => ({
        id: "bob-remote",
        mxid: "@examplenet_bob:example.org",
        name: "Bob",
        avatarUrl: "mxc://example.org/bob",
        ...(opts.createDM ? { dmRoomId: "!dm:example.org", justCreated: identifier === "new" } : {}),
      }),
      identifier,
      opts,
    );
  }

  /** The calls other than permission(), which auth makes. */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  private async record<T>(
    method: string,
    caller: ProvisioningCaller,
    answer: () => T,
    ...args: unknown[]
  ): Promise<T> {
    this.calls.push({ method, caller, args });
    await Promise.resolve(); // answers come asynchronously, as a real service's would
    if (this.failWith !== undefined) throw this.failWith;
    return answer();
  }
}

const FIRST_STEPS: Record<string, LoginStep> = {
  password: {
    type: "user_input",
    id: "examplenet.password",
    instructions: "Enter your nick and password",
    fields: [
      { type: "username", id: "nick", name: "Nick", defaultValue: "guest", pattern: "^[a-z]+$" },
      { type: "password", id: "password", name: "Password", description: "Your NickServ password" },
      { type: "select", id: "server", name: "Server", options: ["a", "b"] },
    ],
  },
  qr: {
    type: "display_and_wait",
    id: "examplenet.qr",
    instructions: "Scan this",
    display: { type: "qr", data: "qr-data", imageUrl: "https://example.net/qr.png" },
  },
  cookies: {
    type: "cookies",
    id: "examplenet.cookies",
    instructions: "Log in in the web view",
    cookies: {
      url: "https://example.net/login",
      userAgent: "Mozilla/5.0",
      extractJs: "return document.cookie",
      fields: [
        {
          id: "session",
          required: true,
          sources: [{ type: "cookie", name: "sid", cookieDomain: "example.net" }],
        },
        { id: "csrf", sources: [{ type: "local_storage", name: "csrf" }], pattern: "^[0-9a-f]+$" },
      ],
    },
  },
};

const COMPLETE: LoginStep = {
  type: "complete",
  id: "examplenet.complete",
  instructions: "Logged in as alice",
  login: { id: "alice-remote", name: "alice", data: { token: "REMOTE-SECRET-TOKEN" } },
};

const NEXT_STEPS: Record<LoginInput["type"], LoginStep> = {
  user_input: FIRST_STEPS.qr!,
  display_and_wait: COMPLETE,
  cookies: COMPLETE,
};

/** A homeserver that knows some access and OpenID tokens; `status` overrides its answers. */
class TokenHomeserver {
  readonly accessTokens = new Map([
    [ALICE_TOKEN, ALICE],
    [BOB_TOKEN, BOB],
    [ADMIN_TOKEN, ADMIN],
  ]);
  readonly openidTokens = new Map([[ALICE_OPENID, ALICE]]);
  /** "whoami" or "openid", one per request. */
  readonly hits: string[] = [];
  status: number | undefined;
  url = "";

  private constructor(private readonly server: Server) {}

  static async start(): Promise<TokenHomeserver> {
    const server = createServer();
    const hs = new TokenHomeserver(server);
    server.on("request", (req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const unknown = () =>
        answer(401, { errcode: "M_UNKNOWN_TOKEN", error: "Invalid access token passed." });
      if (url.pathname === "/_matrix/client/v3/account/whoami") {
        hs.hits.push("whoami");
        if (hs.status !== undefined) return answer(hs.status, { errcode: "M_UNKNOWN", error: "scripted" });
        const user = hs.accessTokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
        return user ? answer(200, { user_id: user, device_id: "DEV" }) : unknown();
      }
      if (url.pathname === "/_matrix/federation/v1/openid/userinfo") {
        hs.hits.push("openid");
        if (hs.status !== undefined) return answer(hs.status, { errcode: "M_UNKNOWN", error: "scripted" });
        const user = hs.openidTokens.get(url.searchParams.get("access_token") ?? "");
        return user ? answer(200, { sub: user }) : unknown();
      }
      answer(404, { errcode: "M_UNRECOGNIZED", error: "no" });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    hs.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return hs;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Setup {
  cb: ReturnType<Koa["callback"]>;
  hs: TokenHomeserver;
  service: FakeService;
  log: LogCapture;
}

/** A koa app with the provisioning middleware, then a marker for what it passed on (418). */
async function setup(t: TestContext, opts: Partial<ProvisioningOptions> = {}): Promise<Setup> {
  const hs = await TokenHomeserver.start();
  t.after(() => hs.close());
  const service = new FakeService();
  const log = new LogCapture();
  const app = new Koa();
  app.use(
    createProvisioning({
      service,
      sharedSecret: SECRET,
      homeserverUrl: hs.url,
      log: log.logger,
      bodyLimitBytes: 4096,
      ...opts,
    }),
  );
  app.use((ctx) => {
    ctx.status = 418;
    ctx.body = { passedOn: true };
  });
  return { cb: app.callback(), hs, service, log };
}

/** `path` with `?user_id=` (or `&user_id=`) for `user`. */
const forUser = (path: string, user = ALICE) =>
  `${P}${path}${path.includes("?") ? "&" : "?"}user_id=${encodeURIComponent(user)}`;
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const secret = bearer(SECRET);

describe("provisioning: every path in mautrix's shapes", () => {
  it("GET /v3/whoami: the bridge, the flows and the caller's logins with their state", async (t) => {
    const { cb, service } = await setup(t);
    const res = await request(cb).get(forUser("/whoami")).set(secret);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      network: {
        displayname: "Example Net",
        network_url: "https://example.net",
        network_icon: "mxc://example.org/icon",
        network_id: "examplenet",
        beeper_bridge_type: "",
      },
      login_flows: FLOWS.map((f) => ({ name: f.name, description: f.description, id: f.id })),
      homeserver: "example.org",
      bridge_bot: "@examplebot:example.org",
      command_prefix: "!examplenet",
      management_room: "!mgmt:example.org",
      logins: [
        {
          state_event: "CONNECTED",
          state_ts: 1_700_000_000,
          state: { state_event: "CONNECTED", timestamp: 1_700_000_000 },
          id: "alice-remote",
          name: "alice on example.net",
          profile: { username: "alice", name: "Alice", avatar: "mxc://example.org/alice" },
        },
        {
          state_event: "BAD_CREDENTIALS",
          state_ts: 1_700_000_100,
          state: { state_event: "BAD_CREDENTIALS", timestamp: 1_700_000_100, message: "wrong password" },
          id: "alice-2",
          name: "alice2",
          profile: {},
        },
      ],
    });
    assert.deepEqual(service.methods().sort(), ["logins", "managementRoom"]);
    assert.deepEqual(service.calls[0]!.caller, { userId: ALICE, permission: "user" });
    // Without a management room the key is left out (Go's omitempty).
    const bob = await request(cb).get(forUser("/whoami", BOB)).set(secret);
    assert.equal(bob.status, 200);
    assert.equal("management_room" in (bob.body as object), false);
    assert.deepEqual((bob.body as { logins: unknown[] }).logins, []);
  });

  it("GET /v3/login/flows and GET /v3/logins", async (t) => {
    const { cb } = await setup(t);
    const flows = await request(cb).get(forUser("/login/flows")).set(secret);
    assert.equal(flows.status, 200);
    assert.deepEqual(flows.body, {
      flows: [
        { name: "Password", description: "Log in with your nick and password", id: "password" },
        { name: "QR code", description: "Scan a QR code", id: "qr" },
        { name: "Web", description: "Log in in a web view", id: "cookies" },
      ],
    });
    const logins = await request(cb).get(forUser("/logins")).set(secret);
    assert.equal(logins.status, 200);
    assert.deepEqual(logins.body, { login_ids: ["alice-remote", "alice-2"] });
  });

  it("a login: start (user_input), step user_input (display_and_wait), step display_and_wait (complete)", async (t) => {
    const { cb, service } = await setup(t);
    const start = await request(cb).post(forUser("/login/start/password")).set(secret);
    assert.equal(start.status, 200);
    assert.deepEqual(start.body, {
      login_id: "proc-1",
      type: "user_input",
      step_id: "examplenet.password",
      instructions: "Enter your nick and password",
      user_input: {
        fields: [
          {
            type: "username",
            id: "nick",
            name: "Nick",
            description: "",
            default_value: "guest",
            pattern: "^[a-z]+$",
          },
          { type: "password", id: "password", name: "Password", description: "Your NickServ password" },
          { type: "select", id: "server", name: "Server", description: "", options: ["a", "b"] },
        ],
      },
    });
    const input = await request(cb)
      .post(forUser("/login/step/proc-1/examplenet.password/user_input"))
      .set(secret)
      .send({ nick: "alice", password: "hunter2", server: "a" });
    assert.equal(input.status, 200);
    assert.deepEqual(input.body, {
      login_id: "proc-1",
      type: "display_and_wait",
      step_id: "examplenet.qr",
      instructions: "Scan this",
      display_and_wait: { type: "qr", data: "qr-data", image_url: "https://example.net/qr.png" },
    });
    // display_and_wait takes no body.
    const done = await request(cb)
      .post(forUser("/login/step/proc-1/examplenet.qr/display_and_wait"))
      .set(secret);
    assert.equal(done.status, 200);
    assert.deepEqual(done.body, {
      login_id: "proc-1",
      type: "complete",
      step_id: "examplenet.complete",
      instructions: "Logged in as alice",
      complete: { user_login_id: "alice-remote" },
    });
    assert.equal(
      JSON.stringify(done.body).includes("REMOTE-SECRET-TOKEN"),
      false,
      "the login's data stays in",
    );
    assert.deepEqual(
      service.calls.map((c) => [c.method, ...c.args]),
      [
        ["startLogin", "password"],
        [
          "submitLogin",
          "proc-1",
          "examplenet.password",
          { type: "user_input", values: { nick: "alice", password: "hunter2", server: "a" } },
        ],
        ["submitLogin", "proc-1", "examplenet.qr", { type: "display_and_wait" }],
      ],
    );
  });

  it("a cookies step and its submission", async (t) => {
    const { cb, service } = await setup(t);
    const start = await request(cb).post(forUser("/login/start/cookies")).set(secret);
    assert.equal(start.status, 200);
    assert.deepEqual(start.body, {
      login_id: "proc-1",
      type: "cookies",
      step_id: "examplenet.cookies",
      instructions: "Log in in the web view",
      cookies: {
        url: "https://example.net/login",
        user_agent: "Mozilla/5.0",
        fields: [
          {
            id: "session",
            required: true,
            sources: [{ type: "cookie", name: "sid", cookie_domain: "example.net" }],
          },
          {
            id: "csrf",
            required: false,
            sources: [{ type: "local_storage", name: "csrf" }],
            pattern: "^[0-9a-f]+$",
          },
        ],
        extract_js: "return document.cookie",
      },
    });
    const done = await request(cb)
      .post(forUser("/login/step/proc-1/examplenet.cookies/cookies"))
      .set(secret)
      .send({ session: "s", csrf: "00ff" });
    assert.equal(done.status, 200);
    assert.equal((done.body as { type: string }).type, "complete");
    assert.deepEqual(service.calls[1]!.args[2], { type: "cookies", values: { session: "s", csrf: "00ff" } });
  });

  it("POST login/cancel and logout (one, all) answer {}", async (t) => {
    const { cb, service } = await setup(t);
    const cancel = await request(cb).post(forUser("/login/cancel/proc-1")).set(secret);
    assert.equal(cancel.status, 200);
    assert.deepEqual(cancel.body, {});
    const one = await request(cb).post(forUser("/logout/alice-remote")).set(secret);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, {});
    const all = await request(cb).post(forUser("/logout/all")).set(secret);
    assert.equal(all.status, 200);
    assert.deepEqual(
      service.calls.map((c) => [c.method, ...c.args]),
      [
        ["cancelLogin", "proc-1"],
        ["logout", "alice-remote"],
        ["logout", "all"],
      ],
    );
  });

  it("resolve_identifier (200) and create_dm (201 when just made, 200 when found); ?login_id= passed on", async (t) => {
    const { cb, service } = await setup(t);
    const bob = {
      id: "bob-remote",
      name: "Bob",
      avatar_url: "mxc://example.org/bob",
      mxid: "@examplenet_bob:example.org",
    };
    const resolved = await request(cb).get(forUser("/resolve_identifier/%2B1%20555%2F0100")).set(secret);
    assert.equal(resolved.status, 200);
    assert.deepEqual(resolved.body, bob);
    const made = await request(cb).post(forUser("/create_dm/new?login_id=alice-2")).set(secret);
    assert.equal(made.status, 201);
    assert.deepEqual(made.body, { ...bob, dm_room_mxid: "!dm:example.org" });
    const found = await request(cb).post(forUser("/create_dm/bob")).set(secret);
    assert.equal(found.status, 200);
    assert.deepEqual(
      service.calls.map((c) => c.args),
      [
        ["+1 555/0100", { createDM: false }],
        ["new", { createDM: true, loginId: "alice-2" }],
        ["bob", { createDM: true }],
      ],
    );
  });

  it("only /v3 is served; unknown paths are 404 and other methods 405 M_UNRECOGNIZED; other prefixes pass on", async (t) => {
    const { cb, service } = await setup(t);
    for (const path of ["/_matrix/provision/v1/whoami", "/_matrix/provision/whoami", `${P}/nope`]) {
      const res = await request(cb)
        .get(`${path}?user_id=${encodeURIComponent(ALICE)}`)
        .set(secret);
      assert.equal(res.status, 404, path);
      assert.equal(errcode(res), "M_UNRECOGNIZED");
    }
    const wrongMethod = await request(cb).post(forUser("/whoami")).set(secret);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, "GET");
    const head = await request(cb).head(forUser("/whoami")).set(secret);
    assert.equal(head.status, 405);
    const other = await request(cb).get("/_matrix/provisioning/v3/whoami");
    assert.equal(other.status, 418, "a path outside the prefix is passed on");
    assert.deepEqual(service.methods(), []);
  });
});

describe("provisioning: auth", () => {
  /** Asserts an error answer and that the service was not called. */
  const refused = (res: request.Response, status: number, code: string, service: FakeService) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(errcode(res), code);
    assert.equal(typeof (res.body as { error?: unknown }).error, "string");
    assert.deepEqual(service.methods(), [], "the service saw no call");
  };

  it("missing or non-Bearer token: 401 M_MISSING_TOKEN", async (t) => {
    const { cb, service, hs } = await setup(t);
    refused(await request(cb).get(forUser("/whoami")), 401, "M_MISSING_TOKEN", service);
    refused(
      await request(cb).get(forUser("/whoami")).set("Authorization", `Basic ${SECRET}`),
      401,
      "M_MISSING_TOKEN",
      service,
    );
    refused(
      await request(cb).get(forUser("/whoami")).set("Authorization", "Bearer "),
      401,
      "M_MISSING_TOKEN",
      service,
    );
    // A token in the query string is not read (tokens stay out of URLs).
    refused(
      await request(cb).get(`${forUser("/whoami")}&access_token=${SECRET}`),
      401,
      "M_MISSING_TOKEN",
      service,
    );
    assert.deepEqual(hs.hits, []);
  });

  it("wrong secret, of the same or another length: 401 M_UNKNOWN_TOKEN (the homeserver does not know it either)", async (t) => {
    const { cb, service, hs } = await setup(t);
    const sameLength = SECRET.slice(0, -1) + (SECRET.endsWith("x") ? "y" : "x");
    assert.equal(sameLength.length, SECRET.length);
    refused(
      await request(cb).get(forUser("/whoami")).set(bearer(sameLength)),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    refused(await request(cb).get(forUser("/whoami")).set(bearer("short")), 401, "M_UNKNOWN_TOKEN", service);
    refused(
      await request(cb)
        .get(forUser("/whoami"))
        .set(bearer(`${SECRET}extra`)),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    assert.deepEqual(hs.hits, ["whoami", "whoami", "whoami"]);
  });

  it("user_id missing, repeated or malformed: 400 naming it", async (t) => {
    const { cb, service } = await setup(t);
    const missing = await request(cb).get(`${P}/whoami`).set(secret);
    refused(missing, 400, "M_MISSING_PARAM", service);
    assert.match((missing.body as { error: string }).error, /user_id/);
    for (const bad of ["alice", "@alice", "@:example.org", "@al ice:example.org", `@${"a".repeat(260)}:x`]) {
      const res = await request(cb)
        .get(`${P}/whoami?user_id=${encodeURIComponent(bad)}`)
        .set(secret);
      refused(res, 400, "M_INVALID_PARAM", service);
      assert.match((res.body as { error: string }).error, /user_id/);
    }
    const twice = await request(cb)
      .get(`${forUser("/whoami")}&user_id=${encodeURIComponent(BOB)}`)
      .set(secret);
    refused(twice, 400, "M_INVALID_PARAM", service);
  });

  it("a user without permission, or with relay only, gets 403 M_FORBIDDEN", async (t) => {
    const { cb, service } = await setup(t);
    refused(await request(cb).get(forUser("/whoami", EVE)).set(secret), 403, "M_FORBIDDEN", service);
    refused(await request(cb).get(forUser("/whoami", RELAY)).set(secret), 403, "M_FORBIDDEN", service);
  });

  it("a Matrix access token acts for its owner; for another user 403, unless its owner is an admin", async (t) => {
    const { cb, service, hs } = await setup(t);
    const own = await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN));
    assert.equal(own.status, 200);
    assert.deepEqual(service.calls[0]!.caller, { userId: ALICE, permission: "user" });
    service.calls.length = 0;
    // Alice's token naming Bob: refused, and Bob's logins were not asked for.
    const other = await request(cb).get(forUser("/logins", BOB)).set(bearer(ALICE_TOKEN));
    refused(other, 403, "M_FORBIDDEN", service);
    assert.match((other.body as { error: string }).error, /admin/);
    // The admin acting for Bob: the service sees Bob, with Bob's permission.
    const admin = await request(cb).post(forUser("/logout/bob-login", BOB)).set(bearer(ADMIN_TOKEN));
    assert.equal(admin.status, 200);
    assert.deepEqual(service.calls, [
      { method: "logout", caller: { userId: BOB, permission: "user" }, args: ["bob-login"] },
    ]);
    service.calls.length = 0;
    // ... but not for someone who may not use the bridge.
    refused(
      await request(cb).get(forUser("/logins", EVE)).set(bearer(ADMIN_TOKEN)),
      403,
      "M_FORBIDDEN",
      service,
    );
    // An unknown access token.
    refused(
      await request(cb).get(forUser("/logins")).set(bearer("syt_nobody")),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    assert.deepEqual(
      hs.hits,
      ["whoami", "whoami", "whoami"],
      "one check per token (three tokens), then cached",
    );
  });

  it("openid:<token> is checked with the homeserver's OpenID userinfo: ok and bad", async (t) => {
    const { cb, service, hs } = await setup(t);
    const good = await request(cb)
      .get(forUser("/logins"))
      .set(bearer(`openid:${ALICE_OPENID}`));
    assert.equal(good.status, 200);
    assert.deepEqual(service.calls[0]!.caller, { userId: ALICE, permission: "user" });
    service.calls.length = 0;
    refused(
      await request(cb).get(forUser("/logins")).set(bearer("openid:wrong")),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    // Alice's OpenID token for Bob: 403 like an access token.
    refused(
      await request(cb)
        .get(forUser("/logins", BOB))
        .set(bearer(`openid:${ALICE_OPENID}`)),
      403,
      "M_FORBIDDEN",
      service,
    );
    // An access token is not an OpenID token, nor the other way round.
    refused(
      await request(cb)
        .get(forUser("/logins"))
        .set(bearer(`openid:${ALICE_TOKEN}`)),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    refused(
      await request(cb).get(forUser("/logins")).set(bearer(ALICE_OPENID)),
      401,
      "M_UNKNOWN_TOKEN",
      service,
    );
    assert.deepEqual(hs.hits, ["openid", "openid", "openid", "whoami"]);
  });

  it("a homeserver that is down or erring: 502, not a bad token, and nothing cached", async (t) => {
    const { cb, service, hs } = await setup(t);
    hs.status = 500;
    refused(await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN)), 502, "M_UNKNOWN", service);
    hs.status = 429;
    refused(await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN)), 502, "M_UNKNOWN", service);
    hs.status = undefined;
    assert.equal((await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN))).status, 200);
    const port = await freePort();
    const { cb: unreachable, service: s2 } = await setup(t, { homeserverUrl: `http://127.0.0.1:${port}` });
    refused(
      await request(unreachable).get(forUser("/logins")).set(bearer(ALICE_TOKEN)),
      502,
      "M_UNKNOWN",
      s2,
    );
  });

  it("tokens are never logged, even when refused or when the homeserver cannot be reached", async (t) => {
    const port = await freePort();
    const { cb, log } = await setup(t);
    const { cb: unreachable, log: log2 } = await setup(t, { homeserverUrl: `http://127.0.0.1:${port}` });
    await request(cb).get(forUser("/logins")).set(bearer("syt_wrong_token_value"));
    await request(cb).get(forUser("/logins")).set(bearer("openid:wrong_openid_value"));
    await request(cb).get(forUser("/logins", BOB)).set(bearer(ADMIN_TOKEN));
    await request(unreachable).get(forUser("/logins")).set(bearer("openid:unreachable_openid_value"));
    await request(unreachable).get(forUser("/logins")).set(bearer("syt_unreachable_value"));
    const text = `${log.text}\n${log2.text}`;
    assert.ok(log.lines.length > 0 && log2.lines.length > 0, "something was logged");
    for (const token of [
      "syt_wrong_token_value",
      "wrong_openid_value",
      ADMIN_TOKEN,
      "unreachable_openid_value",
      "syt_unreachable_value",
      SECRET,
    ]) {
      assert.equal(text.includes(token), false, `${token} is not in the log`);
    }
  });
});

describe("provisioning: whoami cache", () => {
  it("a second call with the same token does not ask the homeserver; concurrent ones ask once", async (t) => {
    const { cb, hs } = await setup(t);
    await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN));
    await request(cb).get(forUser("/whoami")).set(bearer(ALICE_TOKEN));
    assert.deepEqual(hs.hits, ["whoami"]);
    await Promise.all([1, 2, 3].map(() => request(cb).get(forUser("/logins", BOB)).set(bearer(BOB_TOKEN))));
    assert.deepEqual(hs.hits, ["whoami", "whoami"]);
    // A refused token is not remembered: the homeserver is asked again.
    await request(cb).get(forUser("/logins")).set(bearer("syt_nobody"));
    await request(cb).get(forUser("/logins")).set(bearer("syt_nobody"));
    assert.equal(hs.hits.length, 4);
  });

  it("is bounded (the least recently used token is forgotten) and brief (entries expire)", async (t) => {
    const { cb, hs } = await setup(t, { authCache: { max: 2, ttlMs: 60_000 } });
    const call = (token: string, user: string) =>
      request(cb).get(forUser("/logins", user)).set(bearer(token));
    await call(ALICE_TOKEN, ALICE);
    await call(BOB_TOKEN, BOB);
    await call(ADMIN_TOKEN, ADMIN); // evicts Alice's
    assert.equal(hs.hits.length, 3);
    await call(ADMIN_TOKEN, ADMIN);
    await call(BOB_TOKEN, BOB);
    assert.equal(hs.hits.length, 3, "the two newest are remembered");
    await call(ALICE_TOKEN, ALICE);
    assert.equal(hs.hits.length, 4, "the oldest was forgotten");

    const { cb: brief, hs: hs2 } = await setup(t, { authCache: { ttlMs: 30 } });
    await request(brief).get(forUser("/logins")).set(bearer(ALICE_TOKEN));
    await request(brief).get(forUser("/logins")).set(bearer(ALICE_TOKEN));
    assert.equal(hs2.hits.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await request(brief).get(forUser("/logins")).set(bearer(ALICE_TOKEN));
    assert.equal(hs2.hits.length, 2, "an expired entry is checked again");
  });

  it("a revoked token stops working once its entry expires", async (t) => {
    const { cb, hs } = await setup(t, { authCache: { ttlMs: 30 } });
    assert.equal((await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN))).status, 200);
    hs.accessTokens.delete(ALICE_TOKEN);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal((await request(cb).get(forUser("/logins")).set(bearer(ALICE_TOKEN))).status, 401);
  });
});

describe("provisioning: errors, CORS and bodies", () => {
  it("UserFacingError codes map to mautrix's status and errcode, with the message", async (t) => {
    const { cb, service } = await setup(t);
    const cases: Array<[UserFacingError["code"], number, string]> = [
      ["not_found", 404, "M_NOT_FOUND"],
      ["bad_state", 400, "M_BAD_STATE"],
      ["bad_input", 400, "M_INVALID_PARAM"],
      ["forbidden", 403, "M_FORBIDDEN"],
      ["unsupported", 404, "M_UNRECOGNIZED"],
      ["conflict", 409, "M_USER_IN_USE"],
    ];
    for (const [code, status, expected] of cases) {
      service.failWith = new UserFacingError(code, `because ${code}`);
      const res = await request(cb).post(forUser("/logout/x")).set(secret);
      assert.equal(res.status, status, code);
      assert.deepEqual(res.body, { errcode: expected, error: `because ${code}` });
    }
    // An unknown flow, from the service as it would answer.
    service.failWith = undefined;
    const flow = await request(cb).post(forUser("/login/start/nope")).set(secret);
    assert.equal(flow.status, 404);
    assert.equal(errcode(flow), "M_NOT_FOUND");
  });

  it("any other error: 500 M_UNKNOWN with a generic message; the error is logged", async (t) => {
    const { cb, service, log } = await setup(t);
    service.failWith = new Error("database exploded at row 42");
    const res = await request(cb).get(forUser("/whoami")).set(secret);
    assert.equal(res.status, 500);
    assert.equal(errcode(res), "M_UNKNOWN");
    assert.equal(JSON.stringify(res.body).includes("exploded"), false);
    assert.match(log.text, /database exploded at row 42/);
    assert.match(log.text, /provisioning request failed/);
  });

  it("CORS: preflights are answered without auth; every answer carries the headers", async (t) => {
    const { cb, service, hs } = await setup(t);
    const preflight = await request(cb)
      .options(`${P}/login/start/password`)
      .set("Origin", "https://manager.example")
      .set("Access-Control-Request-Method", "POST")
      .set("Access-Control-Request-Headers", "authorization, content-type");
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], "*");
    assert.match(preflight.headers["access-control-allow-methods"] as string, /\bPOST\b/);
    assert.match(preflight.headers["access-control-allow-methods"] as string, /\bGET\b/);
    assert.match(preflight.headers["access-control-allow-headers"] as string, /\bAuthorization\b/);
    assert.match(preflight.headers["access-control-allow-headers"] as string, /\bContent-Type\b/);
    for (const res of [
      await request(cb).get(forUser("/whoami")).set(secret),
      await request(cb).get(forUser("/whoami")),
      await request(cb).get(forUser("/nope")).set(secret),
    ]) {
      assert.equal(res.headers["access-control-allow-origin"], "*", String(res.status));
    }
    assert.deepEqual(service.methods(), ["managementRoom", "logins"]);
    assert.deepEqual(hs.hits, []);
  });

  it("step bodies: non-JSON 400 M_NOT_JSON; not an object of strings 400 M_BAD_JSON naming the field; too large 413", async (t) => {
    const { cb, service } = await setup(t, { bodyLimitBytes: 256 });
    const step = forUser("/login/step/proc-1/examplenet.password/user_input");
    const send = (body: string) =>
      request(cb).post(step).set(secret).set("Content-Type", "application/json").send(body);
    for (const body of ["", "{not json", "\u00ff"]) {
      const res = await send(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(errcode(res), "M_NOT_JSON");
    }
    for (const body of ["[]", "null", '"a"', "3"]) {
      const res = await send(body);
      assert.equal(res.status, 400, body);
      assert.equal(errcode(res), "M_BAD_JSON");
    }
    const numeric = await send('{"nick":"alice","password":1234567}');
    assert.equal(numeric.status, 400);
    assert.equal(errcode(numeric), "M_BAD_JSON");
    assert.match((numeric.body as { error: string }).error, /"password"/);
    assert.equal(
      (numeric.body as { error: string }).error.includes("1234567"),
      false,
      "the value is not echoed",
    );
    const nested = await send('{"nick":{"a":1}}');
    assert.match((nested.body as { error: string }).error, /"nick".*an object/);
    const large = await send(JSON.stringify({ nick: "x".repeat(300) }));
    assert.equal(large.status, 413);
    assert.equal(errcode(large), "M_TOO_LARGE");
    assert.deepEqual(service.methods(), [], "no step was submitted");
  });

  it("step types: complete is 410 (finished), an unknown type 404 M_UNRECOGNIZED; bad percent-encoding 400", async (t) => {
    const { cb, service } = await setup(t);
    const complete = await request(cb).post(forUser("/login/step/proc-1/s/complete")).set(secret);
    assert.equal(complete.status, 410);
    assert.equal(errcode(complete), "FI.MAU.BRIDGE.LOGIN_ALREADY_FINISHED");
    for (const type of ["webauthn", "client_http", "nope"]) {
      const res = await request(cb)
        .post(forUser(`/login/step/proc-1/s/${type}`))
        .set(secret)
        .send({});
      assert.equal(res.status, 404, type);
      assert.equal(errcode(res), "M_UNRECOGNIZED");
    }
    const badEncoding = await request(cb).post(forUser("/logout/%E0%A4%A")).set(secret);
    assert.equal(badEncoding.status, 400);
    assert.equal(errcode(badEncoding), "M_INVALID_PARAM");
    assert.deepEqual(service.methods(), []);
  });

  it("refuses a shared secret shorter than 16 characters", () => {
    const base = {
      service: new FakeService(),
      homeserverUrl: "http://127.0.0.1:1",
      log: new LogCapture().logger,
      bodyLimitBytes: 1024,
    };
    assert.throws(() => createProvisioning({ ...base, sharedSecret: "x".repeat(15) }), /at least 16/);
    assert.throws(() => createProvisioning({ ...base, sharedSecret: "" }), /at least 16/);
    assert.equal(typeof createProvisioning({ ...base, sharedSecret: "x".repeat(16) }), "function");
  });
});

describe("provisioning: on the application service's listener", () => {
  it("answers /_matrix/provision without the hs_token; the appservice routes keep theirs", async (t) => {
    const hs = await TokenHomeserver.start();
    t.after(() => hs.close());
    const service = new FakeService();
    const log = new LogCapture();
    const provisioning = createProvisioning({
      service,
      sharedSecret: SECRET,
      homeserverUrl: hs.url,
      log: log.logger,
      bodyLimitBytes: 4096,
    });
    const { as, close } = await makeApp(new RecordingHandlers(), { extraMiddleware: [provisioning] });
    t.after(close);
    const cb = as.app.callback();
    const ok = await request(cb).get(forUser("/whoami")).set(secret);
    assert.equal(ok.status, 200);
    assert.equal((ok.body as { bridge_bot: string }).bridge_bot, BRIDGE.botUserId);
    // The hs_token is not a provisioning credential: asked of the homeserver, refused.
    const hsToken = await request(cb).get(forUser("/whoami")).set(hsAuth);
    assert.equal(hsToken.status, 401);
    assert.equal(errcode(hsToken), "M_UNKNOWN_TOKEN");
    const unknown = await request(cb).get(forUser("/nope")).set(secret);
    assert.equal(unknown.status, 404);
    assert.equal(errcode(unknown), "M_UNRECOGNIZED");
    // The appservice API is unchanged: the shared secret does not open it.
    const txn = await request(cb).put("/_matrix/app/v1/transactions/1").set(secret).send({ events: [] });
    assert.equal(txn.status, 403);
    const txnOk = await request(cb).put("/_matrix/app/v1/transactions/1").set(hsAuth).send({ events: [] });
    assert.equal(txnOk.status, 200);
    assert.equal((await request(cb).get("/health")).status, 200);
  });
});
