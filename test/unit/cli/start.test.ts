// bridgekit start: start-up failures are one clear line and exit 1; a started bridge logs
// JSON without tokens and serves /metrics where docs/config.md says; SIGTERM (a real signal,
// to a child process) lets the event being handled finish and exits 0; a second signal exits
// at once, and what was recorded but not handled is handled on the next start.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { Bridge } from "../../../src/bridge/index.js";
import { run } from "./run-cli.js";
import { runBridge } from "../../../src/cli/start.js";
import {
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../../../src/registration/index.js";
import { startBridgeProcess } from "../../e2e/support/bridge-process.js";
import { freePort } from "../../e2e/support/synapse.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";

const ECHO = join(import.meta.dirname, "../../../examples/echo/src/adapter.ts");

/** A writable that keeps what pino writes. */
function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join("") };
}

let dir: string;
let hs: FakeHomeserver;
let reg: Registration;
let n = 0;

/** A folder with a registration and a config for the echo adapter against the fake homeserver. */
async function bridgeFiles(
  o: { extra?: string[]; hsUrl?: string; adapter?: string; port?: number } = {},
): Promise<{ config: string; folder: string }> {
  const folder = join(dir, `case-${++n}`);
  await mkdir(folder);
  await saveRegistration(join(folder, "registration.yaml"), reg);
  const config = join(folder, "config.yaml");
  await writeFile(
    config,
    [
      `homeserver: { url: "${o.hsUrl ?? hs.url}", domain: example.org }`,
      `appservice: { port: ${o.port ?? 0} }`,
      "store: sqlite://data/bridge.db",
      "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}' }",
      `adapter: { module: "${o.adapter ?? ECHO}" }`,
      "client: { retryAttempts: 2, maxBackoffMs: 20, requestTimeoutMs: 5000 }",
      ...(o.extra ?? []),
    ].join("\n"),
  );
  return { config, folder };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-start-"));
  reg = generateRegistration({
    id: "echo",
    url: "http://127.0.0.1:9", // the fake homeserver never calls the bridge
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

describe("bridgekit start: start-up failures", () => {
  it("--help explains the flags and the signals", async () => {
    const r = await run("start", "--help");
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: bridgekit start \[--config config\.yaml\]/);
    assert.match(r.out, /SIGTERM or SIGINT stops gracefully/);
    assert.match(r.out, /A second signal exits at once/);
  });

  it("an invalid config: exit 1, the problem named by file and key, no stack trace", async () => {
    const config = join(dir, "bad.yaml");
    await writeFile(
      config,
      "homeserver: { url: nope, domain: example.org }\nbridge: { ghosts: 'x_{id}' }\nadapter: { module: x }\n",
    );
    const r = await run("start", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /^bridgekit start: .*bad\.yaml/);
    assert.match(r.err, /bad\.yaml: homeserver\.url: must be an http\(s\) URL, got "nope"/);
    assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
  });

  it("a missing registration file: exit 1 naming it", async () => {
    const { config, folder } = await bridgeFiles();
    await rm(join(folder, "registration.yaml"));
    const r = await run("start", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /^bridgekit start: .*registration\.yaml.*file not found/s);
    assert.ok(!existsSync(join(folder, "data")), "the store was not created");
  });

  it("an adapter that does not load: exit 1 naming the module", async () => {
    const { config, folder } = await bridgeFiles({ adapter: "./no-such-adapter.js" });
    const r = await run("start", "--config", config);
    assert.equal(r.code, 1);
    assert.match(r.err, /^bridgekit start: .*no-such-adapter\.js/);
    assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
    assert.ok(!existsSync(join(folder, "data")), "the store was not created");
  });

  it("an unreachable homeserver: exit 1 with one line naming the URL; a stack only at debug level", async () => {
    const port = await freePort();
    const { config } = await bridgeFiles({ hsUrl: `http://127.0.0.1:${port}` });
    const r = await run("start", "--config", config);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(`^bridgekit start: cannot reach the homeserver at http://127\\.0\\.0\\.1:${port}: `),
    );
    assert.equal(r.err.split("\n").length, 1, `one line: ${r.err}`);

    const logs = capture();
    const lines: string[] = [];
    const code = await runBridge({
      configPath: config,
      env: { BRIDGEKIT_LOGGING_LEVEL: "debug" },
      logDestination: logs.stream,
      printError: (l) => lines.push(l),
    });
    assert.equal(code, 1);
    assert.match(lines.join("\n"), /cannot reach the homeserver[^]*\n\s+at /, "debug level shows the stack");
  });

  it("a taken port: exit 1 naming the address", async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    try {
      const { config } = await bridgeFiles({ port });
      const r = await run("start", "--config", config);
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`^bridgekit start: .*EADDRINUSE.*127\\.0\\.0\\.1:${port}`));
    } finally {
      blocker.close();
    }
  });
});

/** Runs the bridge in-process until the returned stop() is called. */
async function startInProcess(config: string) {
  const logs = capture();
  const stop = new AbortController();
  let started!: (b: Bridge) => void;
  const ready = new Promise<Bridge>((resolve) => (started = resolve));
  const errors: string[] = [];
  const done = runBridge({
    configPath: config,
    env: {},
    logDestination: logs.stream,
    stopSignal: stop.signal,
    onStarted: started,
    printError: (l) => errors.push(l),
  });
  const bridge = await Promise.race([
    ready,
    done.then((code) => {
      throw new Error(`the bridge did not start (exit ${code}): ${errors.join("\n")}\n${logs.text()}`);
    }),
  ]);
  return {
    bridge,
    logs,
    stop: async () => {
      stop.abort();
      return done;
    },
  };
}

describe("bridgekit start: a running bridge", () => {
  it("logs JSON lines without tokens and serves /metrics on the appservice port by default", async () => {
    const { config, folder } = await bridgeFiles({
      extra: ["metrics: { enabled: true }", "logging: { level: debug }"],
    });
    const b = await startInProcess(config);
    const port = b.bridge.listeningPort!;
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# HELP /m);
    assert.equal(await b.stop(), 0);
    const lines = b.logs.text().trim().split("\n");
    const parsed = lines.map((l) => JSON.parse(l) as { msg?: string; level: number });
    assert.ok(parsed.some((l) => l.msg === "bridge started"));
    assert.ok(parsed.some((l) => l.msg === "bridge stopped"));
    assert.ok(
      !b.logs.text().includes(reg.as_token) && !b.logs.text().includes(reg.hs_token),
      "no token in the logs",
    );
    assert.ok(existsSync(join(folder, "data", "bridge.db")), "the sqlite store is relative to the config");
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), "no longer listening after the stop");
  });

  it("serves /metrics only on metrics.port when it is given", async () => {
    const metricsPort = await freePort();
    const { config } = await bridgeFiles({ extra: [`metrics: { enabled: true, port: ${metricsPort} }`] });
    const b = await startInProcess(config);
    try {
      const separate = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(separate.status, 200);
      assert.match(await separate.text(), /^# TYPE /m);
      const main = await fetch(`http://127.0.0.1:${b.bridge.listeningPort!}/metrics`);
      assert.equal(main.status, 404, "not on the appservice port");
    } finally {
      assert.equal(await b.stop(), 0);
    }
    await assert.rejects(
      fetch(`http://127.0.0.1:${metricsPort}/metrics`),
      "the metrics listener is closed too",
    );
  });

  it("metrics disabled: no /metrics anywhere", async () => {
    const { config } = await bridgeFiles();
    const b = await startInProcess(config);
    try {
      assert.equal((await fetch(`http://127.0.0.1:${b.bridge.listeningPort!}/metrics`)).status, 404);
    } finally {
      assert.equal(await b.stop(), 0);
    }
  });
});

/** PUT with a JSON body on a connection that is closed after the answer. */
function putJson(url: string, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: "PUT",
        agent: false,
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(data),
          Connection: "close",
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

describe("bridgekit start: signals (child process)", () => {
  /** Starts the CLI, creates the portal #echo_lobby through an alias query; returns what tests need. */
  async function startWithPortal(localpart: string) {
    const { config } = await bridgeFiles();
    const proc = await startBridgeProcess(config);
    const listening = await proc.waitForLog(
      (l) => l.msg === "application service listening" && typeof l.port === "number",
    );
    const base = `http://127.0.0.1:${listening.port as number}/_matrix/app/v1`;
    const auth = { Authorization: `Bearer ${reg.hs_token}`, "Content-Type": "application/json" };
    const alias = `#echo_${localpart}:example.org`;
    const query = await fetch(`${base}/rooms/${encodeURIComponent(alias)}`, { headers: auth });
    assert.equal(query.status, 200, await query.text());
    const roomId = hs.aliases.get(alias);
    assert.ok(roomId, "the portal room was created with its alias");
    // A connection of its own, closed after the answer (as a homeserver's idle connection would
    // be), so the stop's timing depends on the bridge, not on an idle keep-alive socket.
    const sendTxn = (txnId: string, body: string, sender: string) =>
      putJson(`${base}/transactions/${txnId}`, reg.hs_token, {
        events: [
          {
            type: "m.room.message",
            event_id: `$${txnId}`,
            room_id: roomId,
            sender,
            origin_server_ts: 1_700_000_000_000,
            content: { msgtype: "m.text", body },
          },
        ],
      });
    return { proc, roomId, sendTxn, config };
  }

  async function waitUntil(what: string, cond: () => boolean, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it("SIGTERM: the event being handled completes, the outbox is flushed (a retried echo is delivered), exit 0", async () => {
    const { proc, roomId, sendTxn } = await startWithPortal("sigterm");
    try {
      // The router asks the homeserver for the sender's display name; hold that answer so the
      // event is still being handled when the signal arrives.
      hs.script(
        { method: "GET", path: /\/state\/m\.room\.member\/@carol:example\.org$/ },
        { status: 200, body: { membership: "join", displayname: "Carol" }, delayMs: 1500 },
      );
      // And fail the echo's first delivery (both client attempts), so that only the outbox's
      // retry delivers it: the stop must wait for that (flush), not cut it off.
      hs.script(
        { method: "PUT", path: /\/send\/m\.room\.message\//, userId: "@echo_carol:example.org" },
        { status: 500, body: { errcode: "M_UNKNOWN", error: "try again" } },
        2,
      );
      const stateAsks = () => hs.requestsTo("GET", /\/state\/m\.room\.member\/@carol:example\.org$/).length;
      const response = sendTxn("t1", "hello", "@carol:example.org");
      await waitUntil("the event to be in its handler", () => stateAsks() === 1);
      proc.kill("SIGTERM");
      const res = await response;
      assert.equal(res.status, 200, "the transaction was recorded and answered");
      assert.deepEqual(res.json, {});
      const exit = await proc.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, proc.stderr());
      const sends = hs
        .requestsTo("PUT", new RegExp(`/rooms/${roomId.replace(/[.$]/g, "\\$&")}/send/m\\.room\\.message/`))
        .filter((r) => r.userId === "@echo_carol:example.org");
      assert.equal(sends.length, 3, "two failed attempts, then the outbox's retry");
      const echo = sends[2]!;
      assert.equal((echo.json as { body: string }).body, "echo: hello");
      assert.equal(echo.query.get("ts"), "1700000000001");
      const msgs = proc.logs().map((l) => l.msg);
      assert.ok(msgs.indexOf("stopping: no new requests; finishing those in flight") >= 0);
      assert.equal(msgs.at(-1), "bridge stopped");
      assert.equal(proc.stderr(), "");
    } finally {
      hs.clearScripts();
      await proc.stop();
    }
  });

  it("a second signal exits at once with 1; the event being handled stays recorded and is handled on the next start", async () => {
    const { proc, roomId, sendTxn, config } = await startWithPortal("twice");
    const daveAsks = () => hs.requestsTo("GET", /\/state\/m\.room\.member\/@dave:example\.org$/).length;
    const echoes = () =>
      hs
        .requestsTo("PUT", new RegExp(`/rooms/${roomId.replace(/[.$]/g, "\\$&")}/send/m\\.room\\.message/`))
        .filter((r) => r.userId === "@echo_dave:example.org");
    let again: Awaited<ReturnType<typeof startBridgeProcess>> | undefined;
    try {
      hs.script(
        { method: "GET", path: /\/state\/m\.room\.member\/@dave:example\.org$/ },
        { status: 200, body: { membership: "join" }, delayMs: 60_000 },
      );
      // The transaction is answered once its event is recorded, before the event is handled.
      const res = await sendTxn("t2", "hello", "@dave:example.org");
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, {});
      await waitUntil("the event to be in its handler", () => daveAsks() === 1);
      proc.kill("SIGTERM");
      await proc.waitForLog((l) => l.msg === "stopping: no new requests; finishing those in flight");
      proc.kill("SIGINT");
      const exit = await proc.exited;
      assert.deepEqual(exit, { code: 1, signal: null });
      assert.match(proc.stderr(), /second SIGINT: exiting without finishing the stop/);
      assert.equal(echoes().length, 0, "the cut-off event was not bridged");

      // The next start finds the event still in the inbox and handles it, once.
      hs.clearScripts();
      again = await startBridgeProcess(config);
      await waitUntil("the event to be handled after the restart", () => echoes().length === 1);
      assert.equal((echoes()[0]!.json as { body: string }).body, "echo: hello");
      assert.equal(daveAsks(), 2, "the handler ran again from the start");
      assert.equal((await again.stop()).code, 0, again.stderr());
      assert.equal(echoes().length, 1, "delivered once");
    } finally {
      hs.clearScripts();
      await proc.stop();
      await again?.stop();
    }
  });
});
