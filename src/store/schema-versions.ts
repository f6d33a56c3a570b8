/**
 * Schema versions: each area of the store (the inbox, portals, the outbox, ...) records the
 * version of the layout it was written with, in the namespace "schema". At start-up
 * `migrateStore` brings every area up to this bridgekit's version, running migrations in
 * order, and refuses a store an area of which was written by a newer bridgekit: reading a
 * layout one does not know could lose or misread what it holds.
 *
 * Adding a layout change: bump the area's `version` and append a migration with `to` equal
 * to it. A migration must be idempotent (a crash between it and the version write reruns it).
 */
import type { Logger } from "../common/logger.js";
import type { Store } from "./store.js";

/** How to bring an area from the version before `to` up to `to`. */
export interface Migration {
  to: number;
  /** One line for the log: what it changes. */
  describe: string;
  run(store: Store, log: Logger): Promise<void>;
}

/** One area of the store: the namespaces it owns, its current layout version, its migrations. */
export interface StoreArea {
  /** The area's name, also its key in the "schema" namespace. */
  name: string;
  /** The namespaces it writes (documentation; each belongs to one area). */
  namespaces: readonly string[];
  version: number;
  /** In ascending `to` order, the last one's `to` equal to `version`. */
  migrations: readonly Migration[];
}

/** Thrown when the store was written by a newer bridgekit (or its versions are unreadable). */
export class StoreSchemaError extends Error {
  override readonly name = "StoreSchemaError";
}

/**
 * The area that held the transaction journal before the inbox replaced it: its keys are
 * dead data once the inbox is in use, deleted by the first migration.
 */
const journalRemoval: Migration = {
  to: 1,
  describe: "delete the transaction journal (replaced by the inbox)",
  async run(store, log) {
    const journal = store.namespace<unknown>("journal");
    const head = await journal.get("head");
    if (head === undefined) return; // never written: nothing to delete
    // Ring slots are 0 .. retention-1 (10 000 by default); a retention of its own is swept
    // until a whole chunk of slots is empty.
    let deleted = 0;
    for (let from = 0; ; from += 1_000) {
      const slots = Array.from({ length: 1_000 }, (_, i) => from + i);
      const owners = await journal.getMany(slots.map((s) => `r:${s}`));
      const used = owners.filter((o) => o !== undefined).length;
      if (used === 0 && from >= 10_000) break;
      // The earliest layout named each record `t:<digest>` in the slot's owner key.
      const legacy = owners.filter((o): o is string => typeof o === "string" && o.startsWith("t:"));
      await journal.deleteMany([...slots.flatMap((s) => [`r:${s}`, `s:${s}`]), ...legacy]);
      deleted += used;
    }
    await journal.delete("head");
    log.info({ slots: deleted }, "deleted the old transaction journal");
  },
};

/** Every area of the store this bridgekit writes, with its layout version. */
export const STORE_AREAS: readonly StoreArea[] = [
  { name: "inbox", namespaces: ["inbox", "inbox-dead"], version: 1, migrations: [journalRemoval] },
  {
    name: "portals",
    namespaces: ["portals", "portals.by-room", "portals.by-alias"],
    version: 1,
    migrations: [],
  },
  { name: "ghosts", namespaces: ["ghosts", "ghosts.by-user"], version: 1, migrations: [] },
  {
    name: "messages",
    namespaces: ["messages.remote", "messages.event", "messages.ring", "messages.head"],
    version: 1,
    migrations: [],
  },
  {
    name: "outbox",
    namespaces: ["outbox.*", "outbox-profiles.*", "outbox-dead"],
    version: 1,
    migrations: [],
  },
  { name: "intents", namespaces: ["intents"], version: 1, migrations: [] },
  /**
   * Bridge users and their logins (src/users/user-store.ts): "users" holds a user's
   * management room, double-puppet token (sealed with logins.encryptionKey) and login ids;
   * "users.by-room" management room -> user; "logins" each login with its adapter data
   * (sealed); "logins.index" every login id in 64 hash buckets, for reconnecting at start.
   */
  {
    name: "users",
    namespaces: ["users", "users.by-room", "logins", "logins.index"],
    version: 1,
    migrations: [],
  },
  { name: "adapter", namespaces: ["adapter"], version: 1, migrations: [] },
];

/**
 * Brings every area up to its version (migrations in order, each area's version written
 * after its migrations), or throws a StoreSchemaError naming the area and both versions when
 * the store is newer than this bridgekit. Resolves with the migrations it ran. With
 * `checkOnly` it changes nothing and only refuses a newer store (tools that read a store).
 */
export async function migrateStore(
  store: Store,
  log: Logger,
  areas: readonly StoreArea[] = STORE_AREAS,
  options: { checkOnly?: boolean } = {},
): Promise<string[]> {
  const versions = store.namespace<unknown>("schema");
  const found = await versions.getMany(areas.map((a) => a.name));
  const ran: string[] = [];
  for (const [i, area] of areas.entries()) {
    const raw = found[i];
    const at = raw === undefined ? 0 : raw;
    if (typeof at !== "number" || !Number.isSafeInteger(at) || at < 0)
      throw new StoreSchemaError(
        `store ${store.description}: schema.${area.name} is ${JSON.stringify(raw)}, not a version number; the store was not written by bridgekit, or was edited`,
      );
    if (at > area.version)
      throw new StoreSchemaError(
        `store ${store.description}: its ${area.name} data was written by a newer bridgekit (schema version ${at}; this one knows up to ${area.version}). Run that newer version, or give this one another store.`,
      );
    if (at === area.version || options.checkOnly) continue;
    for (const migration of area.migrations) {
      if (migration.to <= at || migration.to > area.version) continue;
      log.info({ area: area.name, to: migration.to }, `store migration: ${migration.describe}`);
      await migration.run(store, log);
      ran.push(`${area.name} ${migration.to}: ${migration.describe}`);
    }
    await versions.set(area.name, area.version);
  }
  return ran;
}
