/**
 * npm run demo: a real Synapse and the echo bridge, running on this machine, to try with curl
 * or any Matrix client. npm run demo -- --check does the round trip itself and prints OK.
 *
 * 1. provisions Synapse (scripts/synapse/provision.sh: once, then cached) and starts a fresh
 *    one for server name "localhost", reachable at http://127.0.0.1:8008 (or a free port
 *    when 8008 is taken);
 * 2. writes .demo/config.yaml and, with `bridgekit generate-registration`, .demo/registration.yaml
 *    for examples/echo, with the store in .demo/data/echo.db;
 * 3. starts the bridge with `bridgekit start` (logs in .demo/bridge.log) and registers the
 *    user "demo" with a fresh password;
 * 4. prints how to try it, and runs until Ctrl-C, which stops the bridge, then Synapse.
 *
 * Every run starts from scratch (Synapse's data lives only as long as the run), so .demo/
 * is recreated too. Needs root (Synapse runs in a chroot). See docs/running.md.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { loadRegistration } from "../src/registration/index.js";
import {
  REPO_ROOT,
  runBridgekit,
  startBridgeProcess,
  type BridgeProcess,
} from "../test/e2e/support/bridge-process.js";
import { freePort, startSynapse, type SynapseInstance } from "../test/e2e/support/synapse.js";

const DEMO_DIR = join(REPO_ROOT, ".demo");
const DOMAIN = "localhost";
const PREFERRED_PORT = 8008;

const { values: flags } = parseArgs({
  options: { check: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
});
if (flags.help) {
  console.log(`usage: npm run demo [-- --check]

Starts a real Synapse (http://127.0.0.1:${PREFERRED_PORT}, or a free port) and the echo bridge,
registers the user "demo", prints how to try it, and runs until Ctrl-C.
  --check   do the join + message + echo round trip, print OK and exit 0 (for CI)`);
  process.exit(0);
}

const say = (line: string) => console.log(`[demo] ${line}`);

// Ctrl-C (or SIGTERM) at any point: finish starting or failing, then stop everything in order.
const interrupted = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => interrupted.abort());

/** 127.0.0.1:port -> 127.0.0.1:target, byte for byte; the user's fixed address for Synapse. */
async function forward(
  port: number,
  target: number,
): Promise<{ server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Listens on 8008 if it is free, else on any free port. */
async function publicListener(target: number) {
  try {
    return { port: PREFERRED_PORT, ...(await forward(PREFERRED_PORT, target)) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    const port = await freePort();
    say(`port ${PREFERRED_PORT} is taken; using ${port}`);
    return { port, ...(await forward(port, target)) };
  }
}

async function matrix(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/_matrix/client/v3${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The newcomer's round trip: join #echo_hello, say something, wait for the ghost's echo. */
async function roundTrip(base: string, token: string): Promise<string> {
  const alias = encodeURIComponent(`#echo_hello:${DOMAIN}`);
  const { room_id } = (await matrix(base, token, "POST", `/join/${alias}`, {})) as { room_id: string };
  const text = `hello from the demo check ${Date.now()}`;
  const room = encodeURIComponent(room_id);
  await matrix(base, token, "PUT", `/rooms/${room}/send/m.room.message/check-${Date.now()}`, {
    msgtype: "m.text",
    body: text,
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { chunk } = (await matrix(base, token, "GET", `/rooms/${room}/messages?dir=b&limit=20`)) as {
      chunk: Array<{ sender: string; content: { body?: unknown } }>;
    };
    const echo = chunk.find((e) => e.content.body === `echo: ${text}`);
    if (echo) return `${echo.sender} answered "echo: ${text}" in ${room_id}`;
    await sleep(200);
  }
  throw new Error(`no echo of "${text}" within 30 s (see .demo/bridge.log)`);
}

async function run(): Promise<number> {
  say("provisioning Synapse (cached after the first run, which takes a few minutes)");
  const provision = spawnSync("bash", [join(REPO_ROOT, "scripts", "synapse", "provision.sh")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (provision.status !== 0) {
    console.error(
      "[demo] provisioning Synapse failed (see above); it needs root and network access to Debian",
    );
    return 1;
  }

  await rm(DEMO_DIR, { recursive: true, force: true });
  await mkdir(DEMO_DIR, { recursive: true });
  const config = join(DEMO_DIR, "config.yaml");
  const bridgePort = await freePort();
  const writeConfig = (hsUrl: string) =>
    writeFile(
      config,
      [
        "# Written by npm run demo (scripts/demo.ts); recreated on every run.",
        `homeserver: { url: "${hsUrl}", domain: ${DOMAIN} }`,
        `appservice: { host: 127.0.0.1, port: ${bridgePort}, registration: registration.yaml }`,
        "store: sqlite://data/echo.db",
        "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}' }",
        `adapter: { module: "${join(REPO_ROOT, "examples", "echo", "src", "adapter.ts")}", config: { prefix: "echo: " } }`,
        "logging: { level: info }",
        "metrics: { enabled: true }",
        "client: { retryAttempts: 3 }", // a local demo: fail fast rather than wait out long backoffs
      ].join("\n") + "\n",
    );
  await writeConfig("http://127.0.0.1:8008"); // rewritten with Synapse's address below
  const gen = await runBridgekit(["generate-registration", "--config", config]);
  if (gen.code !== 0) {
    console.error(`[demo] bridgekit generate-registration failed:\n${gen.stderr}`);
    return 1;
  }
  const registration = await loadRegistration(join(DEMO_DIR, "registration.yaml"));

  let synapse: SynapseInstance | undefined;
  let front: { port: number; close: () => Promise<void> } | undefined;
  let bridge: BridgeProcess | undefined;
  const logFile = createWriteStream(join(DEMO_DIR, "bridge.log"));
  const stopAll = async () => {
    if (bridge) {
      const { code } = await bridge.stop();
      say(`bridge stopped (exit ${code})`);
    }
    await front?.close();
    if (synapse) {
      await synapse.stop();
      say("Synapse stopped");
    }
    await new Promise<void>((resolve) => logFile.end(resolve));
  };

  try {
    say("starting Synapse");
    synapse = await startSynapse({ registrations: [registration], serverName: DOMAIN });
    front = await publicListener(synapse.port);
    const base = `http://127.0.0.1:${front.port}`;
    await writeConfig(synapse.url);

    say("starting the echo bridge: bridgekit start --config .demo/config.yaml (logs: .demo/bridge.log)");
    bridge = await startBridgeProcess(config, { ownProcessGroup: true, copyTo: logFile });
    const password = randomBytes(9).toString("base64url");
    const demo = await synapse.registerUser("demo", password);

    if (flags.check) {
      const ping = await runBridgekit(["ping", "--config", config]);
      if (ping.code !== 0) throw new Error(`bridgekit ping failed:\n${ping.stdout}${ping.stderr}`);
      say(await roundTrip(base, demo.accessToken));
      console.log("OK");
      return 0;
    }

    console.log(`
The echo bridge is running on a real Synapse.

  homeserver   ${base}   (server name "${DOMAIN}")
  user         demo   password ${password}
  bridge       127.0.0.1:${bridgePort}, /metrics there too; config .demo/config.yaml, logs .demo/bridge.log

With any Matrix client (e.g. Element; homeserver URL ${base}): log in as demo, join
#echo_hello:${DOMAIN} (any #echo_<name>:${DOMAIN} works) and say something; @echo_demo:${DOMAIN}
answers "echo: ...".

With curl:

  TOKEN=$(curl -s -XPOST ${base}/_matrix/client/v3/login \\
    -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"demo"},"password":"${password}"}' \\
    | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  ROOM=$(curl -s -XPOST -H "Authorization: Bearer $TOKEN" ${base}/_matrix/client/v3/join/%23echo_hello:${DOMAIN} -d '{}' \\
    | sed 's/.*"room_id":"\\([^"]*\\)".*/\\1/')
  curl -s -XPUT -H "Authorization: Bearer $TOKEN" \\
    "${base}/_matrix/client/v3/rooms/$ROOM/send/m.room.message/$(date +%s%N)" -d '{"msgtype":"m.text","body":"hello"}'
  sleep 1; curl -s -H "Authorization: Bearer $TOKEN" "${base}/_matrix/client/v3/rooms/$ROOM/messages?dir=b&limit=3"

Ctrl-C stops the bridge and Synapse.
`);
    await new Promise<void>((resolve) => {
      if (interrupted.signal.aborted) resolve();
      interrupted.signal.addEventListener("abort", () => resolve(), { once: true });
      void bridge!.exited.then(() => {
        if (!interrupted.signal.aborted)
          console.error("[demo] the bridge exited on its own; see .demo/bridge.log");
        resolve();
      });
    });
    say("stopping");
    return 0;
  } catch (err) {
    console.error(`[demo] ${err instanceof Error ? err.message : String(err)}`);
    if (bridge)
      console.error(`--- .demo/bridge.log (tail) ---\n${bridge.stdout().slice(-3000)}${bridge.stderr()}`);
    if (synapse) console.error(synapse.logTail(20));
    return 1;
  } finally {
    await stopAll();
  }
}

process.exitCode = await run();
