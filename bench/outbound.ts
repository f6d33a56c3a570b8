/**
 * Outbound: remote messages sent by the adapter (`ctx.send`) into Matrix, through the
 * durable outbox, into the fake homeserver (a process of its own) and a real Synapse. Per
 * homeserver: first contact (portals created, ghosts registered and joined), steady state,
 * and right after a restart of the Bridge process on the same sqlite store; messages/s and
 * HTTP calls per message. The anchor is a naive bridge (see servers/naive-outbound.ts) that
 * remembers registrations and joins only in memory, as matrix-appservice-bridge does.
 */
import { benchRegistration } from "./lib/bridge-config.js";
import { freshBackend } from "./lib/backends.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { machineFacts, textTable, writeResults } from "./lib/report.js";
import { spawnChild, type Child } from "./lib/rpc.js";
import { round } from "./lib/stats.js";
import { BENCH_DOMAIN } from "./lib/transactions.js";
import type { SendArgs, SendResult } from "./servers/bridgekit-outbound.js";
import { freePort, startSynapse, synapseRoot } from "../test/e2e/support/synapse.js";

interface Phase {
  homeserver: string;
  system: string;
  phase: string;
  result: SendResult;
  messagesPerSec: number;
  callsPerMessage: number;
}

function phase(homeserver: string, system: string, name: string, result: SendResult): Phase {
  return {
    homeserver,
    system,
    phase: name,
    result,
    messagesPerSec: result.messages / result.seconds,
    callsPerMessage: result.calls / result.messages,
  };
}

async function runAgainst(
  homeserver: string,
  hsUrl: string,
  domain: string,
  port: number,
  registration: ReturnType<typeof benchRegistration>,
  steadyMessages: number,
  ROOMS: number,
  GHOSTS: number,
): Promise<Phase[]> {
  const backend = freshBackend("sqlite")!;
  const out: Phase[] = [];
  const pairs = ROOMS * GHOSTS;
  const bridgeScript = new URL("./servers/bridgekit-outbound.ts", import.meta.url);
  const config = { registration, hsUrl, domain, store: backend.url, prefix: backend.prefix, port };
  const args = (messages: number, label: string): SendArgs => ({
    rooms: ROOMS,
    ghosts: GHOSTS,
    messages,
    label,
  });
  let roomIds: string[];
  try {
    let bridge: Child = await spawnChild(bridgeScript, config);
    try {
      out.push(
        phase(homeserver, "bridgekit", "first contact", await bridge.call("send", args(pairs, "first"))),
      );
      out.push(
        phase(homeserver, "bridgekit", "steady", await bridge.call("send", args(steadyMessages, "steady"))),
      );
      roomIds = await bridge.call<string[]>("roomIds", ROOMS);
    } finally {
      await bridge.stop();
    }
    bridge = await spawnChild(bridgeScript, config);
    try {
      out.push(
        phase(homeserver, "bridgekit", "after restart", await bridge.call("send", args(pairs, "restarted"))),
      );
    } finally {
      await bridge.stop();
    }
  } finally {
    backend.cleanup();
  }
  // The naive anchor, freshly started (a restart: it knows nothing), into the same portals.
  const naive = await spawnChild(new URL("./servers/naive-outbound.ts", import.meta.url), {
    asToken: registration.as_token,
    hsUrl,
    domain,
    port,
    roomIds,
  });
  try {
    out.push(
      phase(homeserver, "naive", "after restart", await naive.call("send", args(pairs, "naive-restart"))),
    );
    out.push(
      phase(homeserver, "naive", "steady", await naive.call("send", args(steadyMessages, "naive-steady"))),
    );
  } finally {
    await naive.stop();
  }
  return out;
}

export async function outbound(o: BenchOptions): Promise<BenchOutcome> {
  const steadyMessages = o.quick ? 40 : 400;
  const ROOMS = o.quick ? 5 : 10;
  const GHOSTS = o.quick ? 4 : 20;
  const phases: Phase[] = [];
  const notes: string[] = [];

  process.stdout.write("outbound: fake homeserver\n");
  {
    const port = await freePort();
    const registration = benchRegistration(`http://127.0.0.1:${port}`);
    const hs = await spawnChild<{ url: string }>(new URL("./servers/fake-hs.ts", import.meta.url), {
      asToken: registration.as_token,
      domain: BENCH_DOMAIN,
      botLocalpart: "benchbot",
    });
    try {
      phases.push(
        ...(await runAgainst(
          "fake",
          hs.info.url,
          BENCH_DOMAIN,
          port,
          registration,
          steadyMessages,
          ROOMS,
          GHOSTS,
        )),
      );
    } finally {
      await hs.stop();
    }
  }

  let synapseError: string | undefined;
  try {
    synapseRoot(); // throws naming the fix when Synapse is not provisioned
  } catch (err) {
    synapseError = (err as Error).message;
  }
  if (o.quick) synapseError = "not in a --quick run (it takes ~40 s); the full run includes it";
  if (synapseError === undefined) {
    process.stdout.write("outbound: Synapse\n");
    const port = await freePort();
    const registration = benchRegistration(`http://127.0.0.1:${port}`, "localhost");
    const synapse = await startSynapse({ registrations: [registration] });
    try {
      phases.push(
        ...(await runAgainst(
          "synapse",
          synapse.url,
          synapse.serverName,
          port,
          registration,
          steadyMessages,
          ROOMS,
          GHOSTS,
        )),
      );
    } catch (err) {
      throw new Error(`outbound against Synapse failed: ${(err as Error).message}\n${synapse.logTail(20)}`, {
        cause: err,
      });
    } finally {
      await synapse.stop();
    }
  } else {
    notes.push(`Synapse skipped: ${synapseError}`);
  }

  const table = textTable([
    ["homeserver / system / phase", "messages", "msg/s", "HTTP calls/msg", "calls by kind"],
    ...phases.map((p) => [
      `${p.homeserver} / ${p.system} / ${p.phase}`,
      p.result.messages,
      round(p.messagesPerSec),
      round(p.callsPerMessage, 3),
      Object.entries(p.result.byKind)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ]),
  ]);
  notes.push(
    `${ROOMS} portals x ${GHOSTS} ghosts; "first contact" and "after restart" send one message per (ghost, room) pair; steady sends ${steadyMessages}`,
    "bridgekit: each ctx.send is stored in the outbox (sqlite) before it resolves; msg/s is from the first send to bridge.flush()",
  );
  const data = {
    name: "outbound",
    date: new Date().toISOString(),
    machine: machineFacts(),
    quick: o.quick,
    params: { rooms: ROOMS, ghosts: GHOSTS, steadyMessages },
    notes,
    phases,
  };
  const files = writeResults("outbound", data, {
    title: "Outbound: HTTP calls per message (lower is better)",
    subtitle: `${data.date}${o.quick ? " (quick)" : ""}`,
    unit: "calls/message",
    groups: [...new Set(phases.map((p) => `${p.homeserver}: ${p.phase}`))].map((label) => ({
      label,
      bars: phases
        .filter((p) => `${p.homeserver}: ${p.phase}` === label)
        .map((p) => ({ label: p.system, value: round(p.callsPerMessage, 3) })),
    })),
  });
  return { name: "outbound", table, files, notes };
}
