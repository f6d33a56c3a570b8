/**
 * What backfill keeps in the store, per portal key (portalKey: the remote room, and the login
 * for a DM portal): the anchor (the newest remote message the portal bridged, so a gap fill
 * asks for what came after it), and the pending fill (a task, until its history is queued in
 * the outbox, so a restart runs it again). Tasks are listed in one index record, like the
 * outbox's rooms. Single writer process assumed.
 */
import { LRUCache } from "lru-cache";
import type { HistoryAnchor } from "../adapter/adapter.js";
import { KeyedLock } from "../store/keyed-lock.js";
import type { KeyValue, Store } from "../store/store.js";

/** A requested fill of one portal's history. */
export interface BackfillTask {
  /** The remote room. */
  room: string;
  /** For a login's DM portal: that login (part of the portal's key). */
  dm?: string;
  /** The login whose session fetches (it asked, or owns the DM portal); absent: the adapter. */
  via?: string;
  /** Date.now() when it was first requested. */
  at: number;
}

export class HistoryStore {
  private readonly anchors: KeyValue<HistoryAnchor>;
  private readonly tasks: KeyValue<BackfillTask>;
  private readonly index: KeyValue<string[]>;
  private readonly lock = new KeyedLock();
  /** Anchors read or written lately, so a live send costs no read. Bounded. */
  private readonly cache = new LRUCache<string, HistoryAnchor>({ max: 10_000 });

  constructor(store: Store, namespace = "backfill") {
    this.anchors = store.namespace(`${namespace}.anchor`);
    this.tasks = store.namespace(`${namespace}.task`);
    this.index = store.namespace(`${namespace}.tasks`);
  }

  async anchor(key: string): Promise<HistoryAnchor | undefined> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const stored = await this.anchors.get(key);
    if (stored) this.cache.set(key, stored);
    return stored;
  }

  /** Makes `anchor` the portal's anchor unless the one it has is newer. */
  async advance(key: string, anchor: HistoryAnchor): Promise<void> {
    const current = await this.anchor(key);
    if (current && (current.ts > anchor.ts || current.remoteId === anchor.remoteId)) return;
    await this.anchors.set(key, anchor);
    this.cache.set(key, anchor);
  }

  /** Keys of every stored task (read at start). */
  async taskKeys(): Promise<string[]> {
    return [...((await this.index.get("keys")) ?? [])];
  }

  task(key: string): Promise<BackfillTask | undefined> {
    return this.tasks.get(key);
  }

  /**
   * Stores a task, or completes the one stored: a login asking for a task that has no `via`
   * yet becomes its fetcher. Resolves with what is stored.
   */
  putTask(key: string, task: BackfillTask): Promise<BackfillTask> {
    return this.lock.run(key, async () => {
      const existing = await this.tasks.get(key);
      if (existing && (existing.via !== undefined || task.via === undefined)) return existing;
      const next = existing ? { ...existing, via: task.via! } : task;
      if (!existing) await this.editIndex((keys) => (keys.includes(key) ? keys : [...keys, key]));
      await this.tasks.set(key, next); // listed before it exists: a crash leaves a key without a task
      return next;
    });
  }

  deleteTask(key: string): Promise<void> {
    return this.lock.run(key, async () => {
      await this.tasks.delete(key);
      await this.editIndex((keys) => keys.filter((k) => k !== key));
    });
  }

  private editIndex(change: (keys: string[]) => string[]): Promise<void> {
    return this.lock.run("\u0000index", async () => {
      const keys = (await this.index.get("keys")) ?? [];
      const next = change(keys);
      if (next !== keys) await this.index.set("keys", next);
    });
  }
}
