/**
 * Runs the bridge for tests: a real matrix-bridgekit Bridge, configured by config.example.yaml,
 * against an in-process fake homeserver (FakeHomeserver from matrix-bridgekit/testing), with
 * the in-memory network as the remote side; and helpers to act as the homeserver and a Matrix
 * user (push, say, managementRoom).
 */
import { fileURLToPath } from "node:url";
import {
  Bridge,
  generateRegistration,
  loadConfig,
  openStore,
  silentLogger,
  type Registration,
  type Store,
} from "matrix-bridgekit";
import { createAdapter, type Adapter } from "../src/adapter.js";
import { InMemoryNetwork, type NetworkConnection } from "../src/remote-network.js";
import { FakeHomeserver } from "matrix-bridgekit/testing";

const CONFIG = fileURLToPath(new URL("../config.example.yaml", import.meta.url));
/** The Matrix user the tests act as (config permissions default: users of {{domain}} may log in). */
export const MATRIX_USER = "@alice:{{domain}}";
/** The bridge's bot. */
export const BOT = "@{{network}}bot:{{domain}}";

export interface Running {
  bridge: Bridge;
  hs: FakeHomeserver;
  network: InMemoryNetwork;
  adapter: Adapter;
  registration: Registration;
  /** A remote client, as a remote user's app would be. */
  remote: NetworkConnection;
  store: Store;
}

export async function startBridge(adapterConfig: Record<string, unknown>): Promise<Running> {
  // The real config file, with what a test must change overridden the way an operator would.
  const config = await loadConfig(CONFIG, {
    BRIDGEKIT_APPSERVICE_PORT: "0",
    BRIDGEKIT_STORE: "memory://",
    BRIDGEKIT_LOGGING_LEVEL: "silent",
  });
  const registration = generateRegistration({
    id: "{{network}}",
    url: "http://127.0.0.1:9",
    domain: config.homeserver.domain,
    senderLocalpart: "{{network}}bot",
    ghosts: config.bridge.ghosts,
    ...(config.bridge.portals !== undefined ? { portals: config.bridge.portals } : {}),
    protocols: ["{{network}}"],
  });
  const hs = await FakeHomeserver.start({
    asToken: registration.as_token,
    domain: config.homeserver.domain,
    botLocalpart: registration.sender_localpart,
  });
  const network = new InMemoryNetwork();
  const adapter = createAdapter(network, adapterConfig, silentLogger());
  const store = await openStore(config.store);
  const bridge = new Bridge({
    config: { ...config, homeserver: { ...config.homeserver, url: hs.url } },
    registration,
    adapter,
    store,
    logger: silentLogger(),
    outboxRetry: { minDelayMs: 5, maxDelayMs: 50 },
  });
  await bridge.start();
  return { bridge, hs, network, adapter, registration, store, remote: network.connect(() => {}) };
}

export async function stopBridge(r: Running): Promise<void> {
  r.remote.close();
  await r.bridge.stop();
  await r.store.close();
  await r.hs.close();
}

/**
 * PUTs a transaction to the bridge as the homeserver would, then waits until the bridge has
 * handled it (the bridge answers once the events are recorded, and handles them afterwards);
 * returns the HTTP status.
 */
let txn = 0;
export async function push(r: Running, events: Array<Record<string, unknown>>): Promise<number> {
  const id = `t${++txn}`;
  const res = await fetch(`http://127.0.0.1:${r.bridge.listeningPort}/_matrix/app/v1/transactions/${id}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${r.registration.hs_token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      events: events.map((e, i) => ({
        event_id: `$${id}-${i}`,
        sender: MATRIX_USER,
        origin_server_ts: Date.now(),
        content: {},
        ...e,
      })),
    }),
  });
  await res.arrayBuffer();
  await r.bridge.appservice.drain();
  return res.status;
}

/** Waits until `check` passes (remote events are forwarded asynchronously). */
export async function eventually<T>(check: () => T | undefined | false, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sends a text message as `sender` into a Matrix room, and waits until the bridge handled it. */
let said = 0;
export async function say(r: Running, roomId: string, body: string, sender = MATRIX_USER): Promise<string> {
  const eventId = `$said${++said}`;
  const status = await push(r, [
    {
      event_id: eventId,
      type: "m.room.message",
      room_id: roomId,
      sender,
      content: { msgtype: "m.text", body },
    },
  ]);
  if (status !== 200) throw new Error(`the bridge answered ${status} to a message`);
  return eventId;
}

/**
 * The user opens a direct chat with the bot, as a Matrix client does: the room on the fake
 * homeserver, and the invite pushed. The bot joins it: the user's management room.
 */
export async function managementRoom(r: Running, user = MATRIX_USER): Promise<string> {
  const roomId = r.hs.createRoomDirect(user, "invite");
  r.hs.rooms.get(roomId)!.members.set(BOT, "invite");
  await push(r, [
    {
      type: "m.room.member",
      room_id: roomId,
      sender: user,
      state_key: BOT,
      content: { membership: "invite", is_direct: true },
    },
  ]);
  return roomId;
}

/** The bot's answers (notices) in a room, as text, oldest first. */
export function notices(r: Running, roomId: string): string[] {
  return r.hs
    .events(roomId, "m.room.message")
    .filter((e) => e.sender === BOT && e.content.msgtype === "m.notice")
    .map((e) => String(e.content.body));
}
