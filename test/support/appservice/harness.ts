// Test support for the application-service HTTP API: a registration, recording handlers,
// an app over a memory or sqlite store, and a log capture.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import {
  createAppservice,
  type Appservice,
  type AppserviceHandlers,
  type AppserviceOptions,
} from "../../../src/appservice/index.js";
import { createLogger, type Logger } from "../../../src/common/logger.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import type { Registration } from "../../../src/registration/types.js";
import { openStore, type KeyValue, type Store } from "../../../src/store/index.js";

export const HS_TOKEN = "hs-secret-token-0123456789abcdef";
export const AS_TOKEN = "as-secret-token-fedcba9876543210";
export const DOMAIN = "example.org";

export function testRegistration(overrides: Partial<Registration> = {}): Registration {
  return {
    id: "test",
    url: "http://127.0.0.1:9000",
    as_token: AS_TOKEN,
    hs_token: HS_TOKEN,
    sender_localpart: "testbot",
    namespaces: {
      users: [{ regex: "@test_.*", exclusive: true }],
      aliases: [{ regex: "#test_.*", exclusive: true }],
      rooms: [],
    },
    protocols: ["testproto"],
    ...overrides,
  };
}

export const auth = { Authorization: `Bearer ${HS_TOKEN}` };

let counter = 0;
/** A valid room event; `n` makes the event id unique within a test. */
export function event(roomId: string, n: number | string, extra: Partial<MatrixEvent> = {}): MatrixEvent {
  counter++;
  return {
    event_id: `$ev${n}:${DOMAIN}`,
    room_id: roomId,
    type: "m.room.message",
    sender: "@alice:example.org",
    origin_server_ts: 1_700_000_000_000 + counter,
    content: { msgtype: "m.text", body: `message ${n}` },
    ...extra,
  };
}

/** Handlers that record what they receive; `onEvent` can be replaced per test. */
export class RecordingHandlers implements AppserviceHandlers {
  readonly events: MatrixEvent[] = [];
  readonly calls: Array<{ handler: string; data: unknown; transactionId?: string }> = [];
  eventHook: (event: MatrixEvent, signal: AbortSignal) => Promise<void> = () => Promise.resolve();

  async onEvent(event: MatrixEvent, ctx: { signal: AbortSignal; transactionId: string }): Promise<void> {
    await this.eventHook(event, ctx.signal);
    this.events.push(event);
  }
  onEphemeral(events: unknown[], ctx: { transactionId: string }): Promise<void> {
    this.calls.push({ handler: "ephemeral", data: events, transactionId: ctx.transactionId });
    return Promise.resolve();
  }
  onToDevice(messages: unknown[], ctx: { transactionId: string }): Promise<void> {
    this.calls.push({ handler: "toDevice", data: messages, transactionId: ctx.transactionId });
    return Promise.resolve();
  }
  onDeviceLists(lists: unknown, ctx: { transactionId: string }): Promise<void> {
    this.calls.push({ handler: "deviceLists", data: lists, transactionId: ctx.transactionId });
    return Promise.resolve();
  }
  onOneTimeKeyCounts(counts: unknown, ctx: { transactionId: string }): Promise<void> {
    this.calls.push({ handler: "keyCounts", data: counts, transactionId: ctx.transactionId });
    return Promise.resolve();
  }

  eventIds(): string[] {
    return this.events.map((e) => e.event_id);
  }
}

/** Collects a logger's output lines. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly logger: Logger;
  constructor(level = "debug") {
    const stream = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    this.logger = createLogger({ level }, stream);
  }
  get text(): string {
    return this.lines.join("\n");
  }
}

export interface Harness {
  as: Appservice;
  store: Store;
  handlers: AppserviceHandlers;
  log: LogCapture;
  close: () => Promise<void>;
}

/** An app over a fresh memory store (or the given one), logging into a capture. */
export async function makeApp(
  handlers: AppserviceHandlers,
  opts: Partial<AppserviceOptions> & { storeUrl?: string; keepStore?: boolean } = {},
): Promise<Harness> {
  const store = opts.store ?? (await openStore(opts.storeUrl ?? "memory://"));
  const log = new LogCapture();
  let as: Appservice;
  try {
    as = createAppservice({
      registration: testRegistration(),
      domain: DOMAIN,
      store,
      logger: log.logger,
      ...opts,
      handlers,
    });
  } catch (err) {
    if (!opts.store) await store.close();
    throw err;
  }
  return {
    as,
    store,
    handlers,
    log,
    close: async () => {
      await as.close();
      if (!opts.keepStore && !opts.store) await store.close();
    },
  };
}

/** A temporary folder removed by the returned function. */
export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "bridgekit-as-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A promise with its resolve function exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The errcode of an error response. */
export function errcode(res: { body: unknown }): unknown {
  return (res.body as { errcode?: unknown }).errcode;
}

/** A Map-backed Store whose keys a test can count and inspect. */
export class MapStore implements Store {
  readonly description = "map://";
  readonly backend = "memory" as const;
  readonly prefix = "test";
  readonly data = new Map<string, unknown>();

  namespace<V>(name: string): KeyValue<V> {
    const k = (key: string) => `${name}:${key}`;
    return {
      get: (key) => Promise.resolve(this.data.get(k(key)) as V | undefined),
      getMany: (keys) => Promise.resolve(keys.map((key) => this.data.get(k(key)) as V | undefined)),
      set: (key, value) => {
        this.data.set(k(key), structuredClone(value));
        return Promise.resolve();
      },
      setMany: (entries) => {
        for (const [key, value] of entries) this.data.set(k(key), structuredClone(value));
        return Promise.resolve();
      },
      delete: (key) => Promise.resolve(this.data.delete(k(key))),
      deleteMany: (keys) => {
        for (const key of keys) this.data.delete(k(key));
        return Promise.resolve();
      },
      has: (key) => Promise.resolve(this.data.has(k(key))),
    };
  }

  /** How many keys of a namespace exist. */
  count(name: string): number {
    return this.keys(name).length;
  }

  /** The keys of a namespace, without the namespace. */
  keys(name: string): string[] {
    const prefix = `${name}:`;
    return [...this.data.keys()]
      .filter((key) => key.startsWith(prefix))
      .map((key) => key.slice(prefix.length));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Waits until `condition` holds, polling; fails naming `what` after 5 s. */
export async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2500; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}
