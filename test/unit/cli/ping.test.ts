// bridgekit ping against the in-process fake homeserver: one line per check, exit codes,
// and an explanation for each way the homeserver -> bridge ping can fail.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run-cli.js";
import {
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../../../src/registration/index.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";

const ECHO = join(import.meta.dirname, "../../../examples/echo/src/adapter.ts");

let dir: string;
let hs: FakeHomeserver;
let reg: Registration;
let n = 0;

/** Writes a registration (url as given) and a config for `hsUrl`; returns the config path. */
async function files(hsUrl: string, registration: Registration = reg): Promise<string> {
  const sub = join(dir, `case-${++n}`);
  await mkdir(sub);
  await saveRegistration(join(sub, "registration.yaml"), registration);
  const config = join(sub, "config.yaml");
  await writeFile(
    config,
    [
      `homeserver: { url: "${hsUrl}", domain: example.org }`,
      "appservice: { port: 9999 }",
      "store: memory://",
      "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}' }",
      `adapter: { module: "${ECHO}" }`,
      "client: { requestTimeoutMs: 5000 }",
    ].join("\n"),
  );
  return config;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-ping-"));
  reg = generateRegistration({
    id: "echo",
    url: "http://127.0.0.1:9999",
    domain: "example.org",
    senderLocalpart: "echobot",
    ghosts: "echo_{id}",
    portals: "echo_{id}",
  });
  hs = await FakeHomeserver.start({ asToken: reg.as_token, domain: "example.org", botLocalpart: "echobot" });
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

function assertNoTokens(text: string) {
  assert.ok(!text.includes(reg.as_token), "the as_token is never printed");
  assert.ok(!text.includes(reg.hs_token), "the hs_token is never printed");
}

describe("bridgekit ping", () => {
  it("--help shows the flags and the checks", async () => {
    const r = await run("ping", "--help");
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: bridgekit ping \[--config config\.yaml\]/);
    assert.match(r.out, /as_token/);
  });

  it("all three checks pass: exit 0, one ok line each, using the as_token in the header", async () => {
    const config = await files(hs.url);
    const before = hs.requests.length;
    const r = await run("ping", "--config", config);
    assert.equal(r.code, 0, r.out + r.err);
    const lines = r.out.split("\n");
    assert.equal(lines.length, 3, r.out);
    assert.match(
      lines[0]!,
      new RegExp(`^ok +homeserver: ${hs.url.replace(/[.]/g, "\\.")} answers \\(Matrix v1\\.11, v1\\.12\\)`),
    );
    assert.match(lines[1]!, /^ok +as_token: accepted: the bot is @echobot:example\.org$/);
    assert.match(
      lines[2]!,
      /^ok +homeserver -> bridge: the homeserver reached the bridge at http:\/\/127\.0\.0\.1:9999 in 1 ms$/,
    );
    const made = hs.requests.slice(before);
    assert.deepEqual(
      made.map((q) => `${q.method} ${q.path}`),
      [
        "GET /_matrix/client/versions",
        "GET /_matrix/client/v3/account/whoami",
        "POST /_matrix/client/v1/appservice/echo/ping",
      ],
    );
    assert.equal(made[2]!.headers.authorization, `Bearer ${reg.as_token}`);
    assertNoTokens(r.out + r.err);
  });

  it("an unreachable homeserver fails the first check at once and skips the rest", async () => {
    const config = await files("http://127.0.0.1:1");
    const r = await run("ping", "--config", config);
    assert.equal(r.code, 1);
    const lines = r.out.split("\n");
    assert.match(
      lines[0]!,
      /^FAIL +homeserver: http:\/\/127\.0\.0\.1:1 does not answer \/_matrix\/client\/versions: .*after 1 attempt.*check homeserver\.url/,
    );
    assert.match(lines[1]!, /^--\s+as_token: after the failure above/);
    assert.match(lines[2]!, /^--\s+homeserver -> bridge: after the failure above/);
  });

  it("an as_token the homeserver does not know: says to give the homeserver the registration", async () => {
    const other = generateRegistration({
      id: "echo",
      url: "http://127.0.0.1:9999",
      domain: "example.org",
      senderLocalpart: "echobot",
      ghosts: "echo_{id}",
    });
    const config = await files(hs.url, other);
    const r = await run("ping", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.out, /^ok +homeserver/m);
    assert.match(
      r.out,
      /^FAIL +as_token: the homeserver does not know the as_token of .*registration\.yaml: list the file under app_service_config_files/m,
    );
    assert.match(r.out, /^--\s+homeserver -> bridge: after the failure above/m);
    assert.ok(!r.out.includes(other.as_token) && !r.out.includes(other.hs_token), "no token printed");
  });

  const pingFailures: Array<[string, number, RegExp]> = [
    [
      "M_CONNECTION_FAILED",
      502,
      /the homeserver cannot connect to the bridge at http:\/\/127\.0\.0\.1:9999 \(M_CONNECTION_FAILED: .*\): the bridge is not running \(bridgekit start\), or the url in .*registration\.yaml is wrong/,
    ],
    ["M_CONNECTION_TIMEOUT", 504, /the homeserver cannot connect to the bridge .*the bridge is not running/],
    [
      "M_BAD_STATUS",
      502,
      /something answered at http:\/\/127\.0\.0\.1:9999 with an error \(HTTP 403 Forbidden\): it is not this bridge, or .*different registration \(hs_token\)/,
    ],
    ["M_URL_NOT_SET", 400, /the registration's url is null/],
    [
      "M_FORBIDDEN",
      403,
      /M_FORBIDDEN: .* \(is the homeserver's copy of .*registration\.yaml the same as the bridge's, with id "echo"\?\)/,
    ],
  ];
  for (const [errcode, status, explanation] of pingFailures) {
    it(`the homeserver cannot ping the bridge (${errcode}): exit 1 with an explanation, asked once`, async () => {
      const config = await files(hs.url);
      hs.script(
        { method: "POST", path: /\/appservice\/echo\/ping$/ },
        { status, body: { errcode, error: errcode === "M_BAD_STATUS" ? "HTTP 403 Forbidden" : "nope" } },
        5,
      );
      const before = hs.requestsTo("POST", /\/ping$/).length;
      try {
        const r = await run("ping", "--config", config);
        assert.equal(r.code, 1);
        assert.match(r.out, /^ok +homeserver:/m);
        assert.match(r.out, /^ok +as_token:/m);
        assert.match(r.out, new RegExp(`^FAIL +homeserver -> bridge: ${explanation.source}`, "m"));
        assert.equal(
          hs.requestsTo("POST", /\/ping$/).length - before,
          1,
          "no retries: a 5xx is reported at once",
        );
      } finally {
        hs.clearScripts();
      }
    });
  }

  it("a homeserver without the ping endpoint is a warning, not a failure", async () => {
    const config = await files(hs.url);
    hs.script(
      { method: "POST", path: /\/ping$/ },
      { status: 404, body: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } },
    );
    try {
      const r = await run("ping", "--config", config);
      assert.equal(r.code, 0, r.out);
      assert.match(
        r.out,
        /^warn +homeserver -> bridge: the homeserver does not support the appservice ping/m,
      );
    } finally {
      hs.clearScripts();
    }
  });

  it("a whoami answering for another user is a failure naming both", async () => {
    const config = await files(hs.url);
    hs.script({ method: "GET", path: /whoami$/ }, { status: 200, body: { user_id: "@someone:example.org" } });
    const r = await run("ping", "--config", config);
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      /^FAIL +as_token: the homeserver says the as_token belongs to @someone:example\.org, not the bot @echobot:example\.org/m,
    );
  });

  it("an invalid config or a missing registration: exit 1 naming the file and key, nothing asked", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(
      bad,
      "homeserver: { url: nope, domain: example.org }\nbridge: { ghosts: 'x_{id}' }\nadapter: { module: x }\n",
    );
    const before = hs.requests.length;
    let r = await run("ping", "--config", bad);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.yaml: homeserver\.url: must be an http\(s\) URL, got "nope"/);

    const noReg = join(dir, "noreg.yaml");
    await writeFile(
      noReg,
      `homeserver: { url: "${hs.url}", domain: example.org }\nappservice: { registration: missing.yaml }\nbridge: { ghosts: 'x_{id}' }\nadapter: { module: x }\n`,
    );
    r = await run("ping", "--config", noReg);
    assert.equal(r.code, 1);
    assert.match(r.err, /missing\.yaml/);
    assert.equal(hs.requests.length, before, "no request was made");
  });
});
