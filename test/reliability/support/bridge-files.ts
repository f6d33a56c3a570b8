/**
 * Writes what a bridge process needs into a fresh folder: a generated registration file, a
 * config file (YAML, loaded by the child with the real loadConfig) and, for sqlite, the
 * store's location. The folder is the config's folder, so relative paths resolve there.
 */
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";
import {
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../../../src/registration/index.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { freePort } from "../../support/net.js";
export { freePort };

export const DOMAIN = "example.org";
export const GHOSTS = "rel_{id}";
export const PORTALS = "rel_{id}";

export interface BridgeFiles {
  dir: string;
  configPath: string;
  registrationPath: string;
  registration: Registration;
  /** The port the bridge listens on; the same across restarts (the registration names it). */
  port: number;
}

/**
 * Where the bridge's folder goes: tmpfs (/dev/shm) when there is one, else the temp folder.
 * The tests kill processes, not machines: a write(2) that returned survives a SIGKILL on
 * any file system, so tmpfs loses nothing the test could observe, while it makes every
 * fsync (sqlite's and the record file's) free instead of milliseconds on a busy disk.
 */
export function scratchRoot(): string {
  return existsSync("/dev/shm") && process.env.BK_RELIABILITY_ON_DISK === undefined ? "/dev/shm" : tmpdir();
}

/**
 * Generates a registration, asks `homeserver` for the homeserver URL (it gets the
 * registration, e.g. to start a fake homeserver that checks its as_token), and writes the
 * registration and config files.
 */
export async function writeBridgeFiles(opts: {
  homeserver: (registration: Registration) => Promise<string>;
  /** Store URL; a relative sqlite path is inside the folder. */
  store: string;
  /** The config's `inbox` section (transactions, maxPendingItems, retry, ...), over the defaults. */
  inbox?: Record<string, unknown>;
  /**
   * The config's `lease` section. By default a short ttl: a child restarted after a SIGKILL
   * waits for its dead predecessor's lease to expire (PostgreSQL, Redis) before it starts.
   */
  lease?: { standby?: boolean; ttlMs?: number };
  roomConcurrency?: number;
  label?: string;
}): Promise<BridgeFiles> {
  const dir = await mkdtemp(join(scratchRoot(), `bk-rel-${opts.label ?? "bridge"}-`));
  const port = await freePort();
  const registration = generateRegistration({
    id: "rel",
    url: `http://127.0.0.1:${port}`,
    domain: DOMAIN,
    senderLocalpart: "relbot",
    ghosts: GHOSTS,
    portals: PORTALS,
  });
  const homeserverUrl = await opts.homeserver(registration);
  const registrationPath = join(dir, "registration.yaml");
  await saveRegistration(registrationPath, registration);
  const config = {
    homeserver: { url: homeserverUrl, domain: DOMAIN },
    appservice: {
      registration: "registration.yaml",
      host: "127.0.0.1",
      port,
      handlerTimeoutMs: 20_000,
      roomConcurrency: opts.roomConcurrency ?? 8,
    },
    inbox: { transactions: 10_000, ...opts.inbox },
    lease: { ttlMs: 1_000, ...opts.lease },
    store: opts.store,
    bridge: { ghosts: GHOSTS, portals: PORTALS, unsupportedNotice: false },
    adapter: { module: "unused-the-child-builds-its-adapter", config: {} },
    logging: { level: "warn" },
    metrics: { enabled: true },
    client: { concurrency: 16, retryAttempts: 3, maxBackoffMs: 200, requestTimeoutMs: 10_000 },
  };
  const configPath = join(dir, "config.yaml");
  await writeFile(configPath, dump(config), "utf8");
  return { dir, configPath, registrationPath, registration, port };
}

/**
 * writeBridgeFiles with a fake homeserver started in this process for the registration (it
 * checks the as_token): the bridge's files and that homeserver.
 */
export async function writeBridgeFilesWithFakeHomeserver(opts: {
  label: string;
  store: string;
  inbox?: Record<string, unknown>;
}): Promise<{ files: BridgeFiles; hs: FakeHomeserver }> {
  let hs: FakeHomeserver | undefined;
  const files = await writeBridgeFiles({
    ...opts,
    homeserver: async (registration) => {
      hs = await FakeHomeserver.start({
        asToken: registration.as_token,
        domain: DOMAIN,
        botLocalpart: registration.sender_localpart,
      });
      return hs.url;
    },
  });
  if (!hs) throw new Error("the fake homeserver did not start");
  return { files, hs };
}
