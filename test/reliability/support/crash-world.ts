/**
 * What every crash test sets up: a fake homeserver in this process, the bridge's files, a
 * record file, and a child bridge on them that can be killed and restarted on the same store.
 */
import { join } from "node:path";
import { rm } from "node:fs/promises";
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
  spawn(): Promise<ChildBridge>;
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
  adapter: Omit<RecordingAdapterOptions, "recordPath">;
}): Promise<CrashWorld> {
  const { files, hs } = await writeBridgeFilesWithFakeHomeserver({
    label: opts.label,
    store: opts.store,
    ...(opts.inbox !== undefined ? { inbox: opts.inbox } : {}),
  });
  const recordPath = join(files.dir, "records.log");
  const marks = new RecordFile(recordPath);
  const childOptions: ChildOptions = {
    configPath: files.configPath,
    ...(opts.storePrefix !== undefined ? { storePrefix: opts.storePrefix } : {}),
    adapter: { kind: "recording", recordPath, ...opts.adapter },
  };
  return {
    hs,
    files,
    recordPath,
    marks,
    baseUrl: `http://127.0.0.1:${files.port}`,
    spawn: () => ChildBridge.spawn(childOptions),
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
