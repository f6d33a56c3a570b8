import { createHash } from "node:crypto";
import type { JsonValue } from "../store/json.js";
import { KeyedLock } from "../store/keyed-lock.js";
import type { KeyValue, Store } from "../store/store.js";
import { UserFacingError } from "./errors.js";
import { isSealed, LOGINS_KEY_SOURCE, type SealedValue, type SecretBox } from "./secret-box.js";

/** A stored secret (login data, a double-puppet token) that cannot be opened with the configured key. */
export class UnreadableSecretError extends Error {
  override name = "UnreadableSecretError";
}

/** A Matrix user who has used the bridge. */
export interface UserRecord {
  userId: string;
  /** The DM room where the bot takes the user's commands. */
  managementRoom?: string;
  /** The user's own access token for double puppeting (plain here; sealed at rest with a key). */
  doublePuppetToken?: string;
  createdAt: number;
}

/** A user's login: one remote account. */
export interface LoginRecord {
  /** The remote account's id, unique across the bridge. */
  id: string;
  /** The Matrix user it belongs to. */
  userId: string;
  name: string;
  /** The adapter's data (plain here; sealed at rest with a key). */
  data: JsonValue;
  createdAt: number;
  updatedAt: number;
}

/**
 * A login as an operator sees it (`bridgekit logins list`): everything but its data, and
 * whether the data can be opened with the configured key.
 */
export interface LoginSummary {
  id: string;
  userId: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  /** Its data is sealed (written with a `logins.encryptionKey`). */
  sealed: boolean;
  /** Why its data cannot be opened with the configured key (absent when it can). */
  unreadable?: string;
}

/** What `putLogin` takes: a login without its timestamps. */
export type NewLogin = Pick<LoginRecord, "id" | "userId" | "name" | "data">;

/** A user as stored: its secret sealed (or plain, when written without a key). */
interface StoredUser {
  userId: string;
  managementRoom?: string;
  doublePuppetToken?: string | SealedValue;
  createdAt: number;
}

/** A login as stored: exactly one of `data` (written without a key) and `sealedData`. */
interface StoredLogin {
  id: string;
  userId: string;
  name: string;
  data?: JsonValue;
  sealedData?: SealedValue;
  createdAt: number;
  updatedAt: number;
}

/**
 * How many keys the index of all logins is spread over. Adding a login rewrites one bucket
 * (about 150 ids at 10,000 logins), and `allLogins` reads them all in one `getMany`.
 * Changing it re-homes every id: that would need a store migration.
 */
const INDEX_BUCKETS = 64;
const BUCKET_KEYS = Array.from({ length: INDEX_BUCKETS }, (_, n) => `bucket:${n}`);
/** Logins read per `getMany` while enumerating. */
const READ_BATCH = 256;
/** All writes take this one lock key: they touch records of several users and shared buckets. */
const WRITE = "write";

/** The index key of a login id's bucket: stable across processes and versions. Pure; no I/O. */
function bucketKey(id: string): string {
  return BUCKET_KEYS[createHash("sha256").update(id, "utf8").digest().readUInt32BE(0) % INDEX_BUCKETS]!;
}

/** The index key of a user's login ids (in creation order). */
function ownedKey(userId: string): string {
  return `user:${userId}`;
}

/** A user not yet written, created now. */
function newUser(userId: string): StoredUser {
  return { userId, createdAt: Date.now() };
}

function requireId(what: string, value: unknown): void {
  if (typeof value !== "string" || value === "") throw new TypeError(`${what} must be a non-empty string`);
}

/**
 * Bridge users (management room, double-puppet token) and their logins, on every store
 * backend. With a SecretBox, login data and double-puppet tokens are sealed at rest; records
 * written without one still read, and are sealed on their next write. Sealed values are
 * bound to their record (a login's data cannot be copied onto another login).
 *
 * Records are the source of truth; the indexes (management room -> user; in "logins.index",
 * each user's login ids and every login id in one of INDEX_BUCKETS buckets) are written
 * before the records they point to and checked against them on read, so a crash mid-write
 * reads as "none", never a wrong answer: an index entry without its record is skipped.
 * Removal goes the other way (record first). Writes are serialised by a KeyedLock; single
 * writer process assumed. No method scans the store.
 */
export class UserStore {
  private readonly writes = new KeyedLock();
  private readonly users: KeyValue<StoredUser>;
  private readonly byRoom: KeyValue<string>;
  private readonly logins: KeyValue<StoredLogin>;
  private readonly index: KeyValue<string[]>;

  constructor(
    store: Store,
    private readonly box?: SecretBox,
  ) {
    this.users = store.namespace<StoredUser>("users");
    this.byRoom = store.namespace<string>("users.by-room");
    this.logins = store.namespace<StoredLogin>("logins");
    this.index = store.namespace<string[]>("logins.index");
  }

  /** The user, or undefined if they never used the bridge. Throws if their token cannot be opened. */
  async getUser(userId: string): Promise<UserRecord | undefined> {
    const user = await this.users.get(userId);
    return user && this.revealUser(user);
  }

  /** The user, created (with `createdAt` now) if absent. */
  ensureUser(userId: string): Promise<UserRecord> {
    return this.writes.run(WRITE, async () => {
      requireId("userId", userId);
      const existing = await this.users.get(userId);
      if (existing) return this.revealUser(existing);
      const user = newUser(userId);
      await this.users.set(userId, user);
      return this.revealUser(user);
    });
  }

  /**
   * Sets (creating the user if absent) or clears the user's management room. A room is the
   * management room of one user at most: taken from another user, it is cleared there.
   */
  setManagementRoom(userId: string, roomId: string | undefined): Promise<void> {
    return this.writes.run(WRITE, async () => {
      requireId("userId", userId);
      if (roomId !== undefined) requireId("roomId", roomId);
      const user = roomId === undefined ? await this.users.get(userId) : await this.loadUser(userId);
      if (!user || user.managementRoom === roomId) return;
      const old = user.managementRoom;
      if (roomId !== undefined) {
        const previous = await this.roomOwner(roomId);
        if (previous !== undefined && previous.userId !== userId)
          await this.saveUser({ ...previous, managementRoom: undefined });
        await this.byRoom.set(roomId, userId);
      }
      await this.saveUser({ ...user, managementRoom: roomId });
      if (old !== undefined && (await this.byRoom.get(old)) === userId) await this.byRoom.delete(old);
    });
  }

  /** The user's management room, without opening their sealed token (so it works without the key). */
  async managementRoomOf(userId: string): Promise<string | undefined> {
    return (await this.users.get(userId))?.managementRoom;
  }

  /** The user whose management room this is; a stale index entry reads as none. */
  async userByManagementRoom(roomId: string): Promise<string | undefined> {
    return (await this.roomOwner(roomId))?.userId;
  }

  /** Sets (creating the user if absent) or clears the user's double-puppet token. */
  setDoublePuppetToken(userId: string, token: string | undefined): Promise<void> {
    return this.writes.run(WRITE, async () => {
      requireId("userId", userId);
      if (token !== undefined) requireId("the double-puppet token", token);
      const user = token === undefined ? await this.users.get(userId) : await this.loadUser(userId);
      if (!user || (token === undefined && user.doublePuppetToken === undefined)) return;
      await this.saveUser({ ...user, doublePuppetToken: token });
    });
  }

  /** The user's double-puppet token, in plain text. Throws if it is sealed and cannot be opened. */
  async getDoublePuppetToken(userId: string): Promise<string | undefined> {
    const user = await this.users.get(userId);
    return user && this.revealUser(user).doublePuppetToken;
  }

  /** A login by its remote account id. Throws if its data is sealed and cannot be opened. */
  async getLogin(id: string): Promise<LoginRecord | undefined> {
    const login = await this.logins.get(id);
    return login && this.revealLogin(login);
  }

  /** The user's logins, in creation order (no scan: their ids are kept under one key). */
  async loginsOf(userId: string): Promise<LoginRecord[]> {
    const owned = (await this.index.get(ownedKey(userId))) ?? [];
    if (owned.length === 0) return [];
    const found = await this.logins.getMany(owned);
    return found
      .filter((login): login is StoredLogin => login?.userId === userId)
      .map((login) => this.revealLogin(login));
  }

  /**
   * Stores a login (creating its user if absent): a new one gets `createdAt`, an existing
   * one of the same user keeps it and gets new name and data; both get `updatedAt` now.
   * Throws a UserFacingError with code "conflict" when the remote account is another
   * user's login, which is left as it was.
   */
  putLogin(login: NewLogin): Promise<LoginRecord> {
    return this.writes.run(WRITE, async () => {
      requireId("login id", login.id);
      requireId(`login ${login.id} userId`, login.userId);
      if (typeof login.name !== "string") throw new TypeError(`login ${login.id} name must be a string`);
      if (login.data === undefined) throw new TypeError(`login ${login.id} data must be a JSON value`);
      const [existing, user, [owned = [], bucket = []]] = await Promise.all([
        this.logins.get(login.id),
        this.users.get(login.userId),
        this.index.getMany([ownedKey(login.userId), bucketKey(login.id)]),
      ]);
      if (existing && existing.userId !== login.userId)
        throw new UserFacingError(
          "conflict",
          `remote account ${login.id} is already logged in by another Matrix user`,
        );
      if (!user) await this.users.set(login.userId, newUser(login.userId));
      // A record implies its index entries (they are written first and removed after it).
      if (!existing) await this.indexNewLogin(login, owned, bucket);
      const now = Date.now();
      const record: LoginRecord = {
        id: login.id,
        userId: login.userId,
        name: login.name,
        data: login.data,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      await this.logins.set(login.id, this.sealLogin(record));
      return record;
    });
  }

  /** Forgets a login (record first, then its index entries); returns true if it existed. */
  deleteLogin(id: string): Promise<boolean> {
    return this.writes.run(WRITE, async () => {
      const login = await this.logins.get(id);
      if (!login) return false;
      await this.logins.delete(id);
      const keys = [ownedKey(login.userId), bucketKey(id)];
      const lists = await this.index.getMany(keys);
      await this.index.setMany(keys.map((key, i) => [key, (lists[i] ?? []).filter((other) => other !== id)]));
      return true;
    });
  }

  /**
   * Every login, each once, in no particular order, for reconnecting at start: the index
   * buckets in one `getMany`, then the logins in batches. The ids are taken when iteration
   * begins: a login added later is not seen, one deleted before its batch is read is not.
   * Throws (naming the login) when a login's data is sealed and cannot be opened.
   */
  async *allLogins(): AsyncGenerator<LoginRecord> {
    for await (const login of this.storedLogins()) yield this.revealLogin(login);
  }

  /**
   * Every login without its data, each once, for operators: a login whose data cannot be
   * opened (no key, or another key) is listed with why, rather than thrown on.
   */
  async *loginSummaries(): AsyncGenerator<LoginSummary> {
    for await (const login of this.storedLogins()) {
      const summary: LoginSummary = {
        id: login.id,
        userId: login.userId,
        name: login.name,
        createdAt: login.createdAt,
        updatedAt: login.updatedAt,
        sealed: login.sealedData !== undefined,
      };
      try {
        this.revealLogin(login);
      } catch (err) {
        summary.unreadable = (err as Error).message;
      }
      yield summary;
    }
  }

  /** The stored logins: the index buckets in one `getMany`, then the logins in batches. */
  private async *storedLogins(): AsyncGenerator<StoredLogin> {
    const buckets = await this.index.getMany(BUCKET_KEYS);
    const ids = [...new Set(buckets.flatMap((bucket) => bucket ?? []))];
    for (let start = 0; start < ids.length; start += READ_BATCH) {
      const found = await this.logins.getMany(ids.slice(start, start + READ_BATCH));
      for (const login of found) if (login) yield login;
    }
  }

  /** The stored user, or a new one (not yet written). */
  private async loadUser(userId: string): Promise<StoredUser> {
    return (await this.users.get(userId)) ?? newUser(userId);
  }

  /** The owner of a management room, checked against their record. */
  private async roomOwner(roomId: string): Promise<StoredUser | undefined> {
    const userId = await this.byRoom.get(roomId);
    const user = userId === undefined ? undefined : await this.users.get(userId);
    return user?.managementRoom === roomId ? user : undefined;
  }

  /**
   * Adds a new login's id to its user's list (dropping ids a crash left there: no record,
   * or another user's) and to its bucket, in one `setMany`. Called before the login record
   * is written.
   */
  private async indexNewLogin(login: NewLogin, owned: string[], bucket: string[]): Promise<void> {
    const owners = owned.length === 0 ? [] : await this.logins.getMany(owned);
    const kept = owned.filter((other, i) => other !== login.id && owners[i]?.userId === login.userId);
    const entries: Array<[string, string[]]> = [[ownedKey(login.userId), [...kept, login.id]]];
    if (!bucket.includes(login.id)) entries.push([bucketKey(login.id), [...bucket, login.id]]);
    await this.index.setMany(entries);
  }

  /** Writes a user, sealing a plain token when there is a key; undefined fields are left out. */
  private async saveUser(user: StoredUser): Promise<void> {
    const stored: StoredUser = { userId: user.userId, createdAt: user.createdAt };
    if (user.managementRoom !== undefined) stored.managementRoom = user.managementRoom;
    const token = user.doublePuppetToken;
    if (token !== undefined)
      stored.doublePuppetToken =
        typeof token === "string" && this.box ? this.box.seal(token, tokenContext(user.userId)) : token;
    await this.users.set(user.userId, stored);
  }

  private revealUser(user: StoredUser): UserRecord {
    const record: UserRecord = { userId: user.userId, createdAt: user.createdAt };
    if (user.managementRoom !== undefined) record.managementRoom = user.managementRoom;
    const token = user.doublePuppetToken;
    if (typeof token === "string") record.doublePuppetToken = token;
    else if (token !== undefined) {
      const opened = this.open(`the double-puppet token of ${user.userId}`, token, tokenContext(user.userId));
      if (typeof opened !== "string")
        throw new Error(
          `the double-puppet token of ${user.userId} opened to a ${typeof opened}, not a string`,
        );
      record.doublePuppetToken = opened;
    }
    return record;
  }

  private sealLogin(login: LoginRecord): StoredLogin {
    const { data, ...rest } = login;
    return this.box
      ? { ...rest, sealedData: this.box.seal(data, loginContext(login.id)) }
      : { ...rest, data };
  }

  private revealLogin(login: StoredLogin): LoginRecord {
    // Every field named, in one order: records then share one hidden class (a spread gives each
    // its own, about 280 bytes more per login held in memory; see docs/benchmarks.md).
    const data =
      login.sealedData === undefined
        ? (login.data ?? null)
        : this.open(`login ${login.id} data`, login.sealedData, loginContext(login.id));
    return {
      id: login.id,
      userId: login.userId,
      name: login.name,
      data,
      createdAt: login.createdAt,
      updatedAt: login.updatedAt,
    };
  }

  /** Opens a sealed value, naming `what` and the key to configure when it cannot. */
  private open(what: string, sealed: SealedValue, context: string): JsonValue {
    if (!isSealed(sealed))
      throw new UnreadableSecretError(`${what} is neither plain nor a sealed value; the store was edited`);
    if (!this.box)
      throw new UnreadableSecretError(
        `${what} is encrypted, and no ${LOGINS_KEY_SOURCE} is configured: configure the key it was written with`,
      );
    try {
      return this.box.open(sealed, context);
    } catch (err) {
      throw new UnreadableSecretError(`${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Additional authenticated data: binds sealed values to their record. */
function loginContext(id: string): string {
  return `login:${id}`;
}

function tokenContext(userId: string): string {
  return `double-puppet:${userId}`;
}
