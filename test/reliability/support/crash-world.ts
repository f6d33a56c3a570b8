/**
 * What every crash test sets up: a fake homeserver in this process, the bridge's files, a
 * record file, and a child bridge on them that can be killed and restarted on the same store.
 * A second config file, identical but for `lease.standby: true`, starts standbys: a child on
 * it waits for the store's writer lease without listening, then takes over (same port).
 */
import { join } from "node:path";
import { readFile, rm, writeFile } from "node:fs/promises";
import { dump, load } from "js-yaml";
import type { FakeHomeserver } from "../../support/fake-homeserver.js";
import { writeBridgeFilesWithFakeHomeserver, DOMAIN, type BridgeFiles } from "./bridge-files.js";
import { ChildBridge } from "./child-bridge.js";
import type { ChildOptions } from "./child-protocol.js";
import { RecordFile } from "./record-file.js";
import type { RecordingAdapterOptions } from "./recording-adapter.js";

export interface CrashWorld {
  hs: FakeHomeserver;
  files: BridgeFiles;
  recordPath: string;
  /** The test's own writer on the record file (K and X lines, only while no child runs). */
  marks: RecordFile;
  baseUrl: string;
  /** The config file of standbys (`lease.standby: true`, the rest as files.configPath). */
  standbyConfigPath: string;
  /** Starts a bridge child; `recordPath` gives it its own record file (default: recordPath). */
  spawn(opts?: { recordPath?: string }): Promise<ChildBridge>;
  /** Starts a standby child: it reports ready only once it took the writer lease over. */
  spawnStandby(opts?: { recordPath?: string }): Promise<ChildBridge>;
  /** Matrix room id of remote room `remote` (after the first child made the portals). */
  roomId(remote: string): string;
  close(): Promise<void>;
}

export async function crashWorld(opts: {
  label: string;
  store: string;
  storePrefix?: string;
  /** More of the config's `inbox` section (maxPendingItems, retry, ...). */
  inbox?: Record<string, unknown>;
  /** The config's `lease` section, over bridge-files' (a ttl of 1000 ms). */
  lease?: { ttlMs?: number };
  adapter: Omit<RecordingAdapterOptions, "recordPath">;
}): Promise<CrashWorld> {
  const { files, hs } = await writeBridgeFilesWithFakeHomeserver({
    label: opts.label,
    store: opts.store,
    ...(opts.inbox !== undefined ? { inbox: opts.inbox } : {}),
  });
  const config = load(await readFile(files.configPath, "utf8")) as { lease?: Record<string, unknown> };
  if (opts.lease !== undefined) {
    config.lease = { ...config.lease, ...opts.lease };
    await writeFile(files.configPath, dump(config), "utf8");
  }
  // Next to the first, so its relative paths (registration, sqlite store) resolve the same.
  const standbyConfigPath = join(files.dir, "config-standby.yaml");
  await writeFile(standbyConfigPath, dump({ ...config, lease: { ...config.lease, standby: true } }), "utf8");
  const recordPath = join(files.dir, "records.log");
  const marks = new RecordFile(recordPath);
  const childOptions = (configPath: string, records = recordPath): ChildOptions => ({
    configPath,
    ...(opts.storePrefix !== undefined ? { storePrefix: opts.storePrefix } : {}),
    adapter: { kind: "recording", recordPath: records, ...opts.adapter },
  });
  return {
    hs,
    files,
    recordPath,
    marks,
    baseUrl: `http://127.0.0.1:${files.port}`,
    standbyConfigPath,
    spawn: (o = {}) => ChildBridge.spawn(childOptions(files.configPath, o.recordPath)),
    spawnStandby: (o = {}) => ChildBridge.spawn(childOptions(standbyConfigPath, o.recordPath)),
    roomId(remote) {
      const alias = `#rel_${remote}:${DOMAIN}`;
      const roomId = hs.aliases.get(alias);
      if (roomId === undefined) throw new Error(`the homeserver has no room for ${alias}`);
      return roomId;
    },
    async close() {
      marks.close();
      await hs.close();
      await rm(files.dir, { recursive: true, force: true });
    },
  };
}
