/**
 * Runs a whole Bridge in-process against the FakeHomeserver, with a scriptable test adapter.
 * For tests of routing, echo suppression, id mapping and outbox delivery; the same paths are
 * proven against a real Synapse in test/e2e.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import type { BridgeContext, Portal, RemoteNetworkAdapter } from "../../src/adapter/index.js";
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger, type Logger } from "../../src/common/logger.js";
import type { BridgeConfig } from "../../src/config/types.js";
import { validateConfig } from "../../src/config/validate.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { FakeHomeserver } from "./fake-homeserver.js";

export const DOMAIN = "example.org";

/**
 * The test bridge's config: the schema's defaults (so a new config key needs no edit here),
 * with what tests want faster or smaller (retries in milliseconds, fewer rooms at once).
 */
export function testConfig(hsUrl: string, overrides: Partial<BridgeConfig["bridge"]> = {}): BridgeConfig {
  const config = validateConfig(
    {
      homeserver: { url: hsUrl, domain: DOMAIN },
      appservice: { registration: "/unused", port: 0, handlerTimeoutMs: 10_000, roomConcurrency: 8 },
      inbox: {
        transactions: 1000,
        maxDeadLetters: 1000,
        retry: { firstDelayMs: 10, maxDelayMs: 100, maxAttempts: 5, maxAgeMs: 60_000 },
      },
      store: "memory://",
      bridge: { ghosts: "test_{id}", portals: "test_{id}" },
      adapter: { module: "unused" },
      logging: { level: "silent" },
      media: { spoolDir: join(tmpdir(), `bridgekit-spool-${process.pid}`) },
      client: { concurrency: 10, retryAttempts: 2, maxBackoffMs: 20, requestTimeoutMs: 5000 },
    },
    "test config",
    { configDir: tmpdir() },
  );
  Object.assign(config.bridge, overrides);
  return config;
}

/** An adapter whose handlers record their calls; tests replace methods as needed. */
export class TestAdapter implements RemoteNetworkAdapter {
  readonly name = "test";
  ctx: BridgeContext | undefined;
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  createPortalsOnDemand = false;
  nextRemoteId = 0;

  start(ctx: BridgeContext) {
    this.ctx = ctx;
    return Promise.resolve();
  }
  stop() {
    return Promise.resolve();
  }
  queryRoom(remoteId: string) {
    this.calls.push({ method: "queryRoom", args: [remoteId] });
    return Promise.resolve(remoteId.startsWith("missing") ? null : { name: `Room ${remoteId}` });
  }
  queryUser(remoteId: string) {
    this.calls.push({ method: "queryUser", args: [remoteId] });
    return Promise.resolve(remoteId.startsWith("missing") ? null : { displayName: `Remote ${remoteId}` });
  }
  onMessage(message: unknown, portal: Portal) {
    this.calls.push({ method: "onMessage", args: [message, portal] });
    return Promise.resolve(`r${++this.nextRemoteId}`);
  }
  onRedaction(redaction: unknown, portal: Portal) {
    this.calls.push({ method: "onRedaction", args: [redaction, portal] });
    return Promise.resolve();
  }
  onMembership(membership: unknown, portal: Portal) {
    this.calls.push({ method: "onMembership", args: [membership, portal] });
    return Promise.resolve();
  }
  userFromUri(uri: URL) {
    return uri.protocol === "test:" ? uri.pathname : null;
  }
  roomFromUri(uri: URL) {
    return uri.protocol === "test:" && uri.hash ? uri.hash.slice(1) : null;
  }
}

export interface Harness<A extends RemoteNetworkAdapter = TestAdapter> {
  hs: FakeHomeserver;
  bridge: Bridge;
  adapter: A;
  registration: Registration;
  store: Store;
  /** PUTs a transaction with the hs_token; returns the HTTP status. */
  push(events: Array<Partial<MatrixEvent>>, txnId?: string): Promise<number>;
  /** GETs an appservice path with the hs_token. */
  get(path: string): Promise<request.Response>;
  /** Makes a portal for `remoteId` through the alias query, as a Matrix user joining would. */
  portal(remoteId: string): Promise<Portal>;
  stop(): Promise<void>;
}

let txnCounter = 0;

/** A registration for the test bridge: bot @bot, ghosts and portals `test_{id}` on DOMAIN. */
export function testRegistration(): Registration {
  return generateRegistration({
    id: "test",
    url: "http://127.0.0.1:1",
    domain: DOMAIN,
    senderLocalpart: "bot",
    ghosts: "test_{id}",
    portals: "test_{id}",
  });
}

/** Runs `fn` with a started harness and always stops it afterwards. */
export async function withHarness<A extends RemoteNetworkAdapter = TestAdapter>(
  fn: (h: Harness<A>) => Promise<void>,
  opts: HarnessOptions<A> = {},
): Promise<void> {
  const h = await startHarness(opts);
  try {
    await fn(h);
  } finally {
    await h.stop();
  }
}

export interface HarnessOptions<A extends RemoteNetworkAdapter = TestAdapter> {
  hs?: FakeHomeserver;
  store?: Store;
  adapter?: A;
  registration?: Registration;
  bridge?: Partial<BridgeConfig["bridge"]>;
  /** Changes to the rest of the config (permissions, logins, ...). */
  configure?: (config: BridgeConfig) => void;
  logger?: Logger;
}

export async function startHarness<A extends RemoteNetworkAdapter = TestAdapter>(
  opts: HarnessOptions<A> = {},
): Promise<Harness<A>> {
  const registration = opts.registration ?? testRegistration();
  const ownHs = opts.hs === undefined;
  const ownStore = opts.store === undefined;
  const hs = opts.hs ?? (await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN }));
  const store =
    opts.store ?? (await openStore(`sqlite://${join(await mkdtemp(join(tmpdir(), "bk-bridge-")), "b.db")}`));
  const adapter = opts.adapter ?? (new TestAdapter() as unknown as A);
  const config = testConfig(hs.url, opts.bridge);
  opts.configure?.(config);
  const bridge = new Bridge({
    config,
    registration,
    adapter,
    store,
    logger: opts.logger ?? silentLogger(),
    outboxRetry: { minDelayMs: 5, maxDelayMs: 50 },
  });
  await bridge.start();
  const auth = `Bearer ${registration.hs_token}`;
  const harness: Harness<A> = {
    hs,
    bridge,
    adapter,
    registration,
    store,
    async push(events, txnId = `t${++txnCounter}-${Date.now()}`) {
      const full = events.map((e, i) => ({
        event_id: `$${txnId}-${i}`,
        room_id: "!none:example.org",
        sender: "@alice:example.org",
        origin_server_ts: 1000 + i,
        content: {},
        type: "m.room.message",
        ...e,
      }));
      const res = await request(bridge.appservice.app.callback())
        .put(`/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`)
        .set("Authorization", auth)
        .send({ events: full });
      return res.status;
    },
    get(path) {
      return request(bridge.appservice.app.callback()).get(path).set("Authorization", auth);
    },
    async portal(remoteId) {
      const alias = bridge.portals.aliasFor(remoteId);
      const res = await harness.get(`/_matrix/app/v1/rooms/${encodeURIComponent(alias)}`);
      if (res.status !== 200) throw new Error(`alias query for ${alias} answered ${res.status}`);
      const portal = await bridge.portals.get(remoteId);
      if (!portal) throw new Error(`no portal for ${remoteId} after the alias query`);
      return portal;
    },
    /** Stops the bridge, and the fake homeserver and store if the harness made them. */
    async stop() {
      await bridge.stop();
      if (ownStore) await store.close();
      if (ownHs) await hs.close();
    },
  };
  return harness;
}
