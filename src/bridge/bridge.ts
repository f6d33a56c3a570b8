import type { RemoteNetworkAdapter, RemoteSession, ThirdPartyMatch } from "../adapter/adapter.js";
import { loadAdapter } from "../adapter/load-adapter.js";
import type { AppserviceHandlers, ThirdPartyHandlers } from "../appservice/handlers.js";
import { createAppservice, type Appservice } from "../appservice/app.js";
import { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import { createLogger, type Logger } from "../common/logger.js";
import type { BridgeConfig } from "../config/types.js";
import { loadConfig } from "../config/load.js";
import { loadRegistration } from "../registration/load.js";
import { IdTemplate } from "../registration/localpart.js";
import { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";
import { Attachments } from "../media/attachments.js";
import { Avatars } from "../media/avatars.js";
import { UploadLimit } from "../media/upload-limit.js";
import { MediaUploads } from "../media/uploads.js";
import { AdapterKV } from "../store/adapter-kv.js";
import { GhostStore } from "../store/ghost-store.js";
import type { JsonValue } from "../store/json.js";
import { MessageMap } from "../store/message-map.js";
import { openStore } from "../store/open-store.js";
import { Outbox } from "../store/outbox.js";
import { PortalStore } from "../store/portal-store.js";
import { acquireWriterLease, fencedStore, type WriterLease } from "../store/lease.js";
import { migrateStore } from "../store/schema-versions.js";
import type { Store } from "../store/store.js";
import { BridgeMetrics } from "./bridge-metrics.js";
import { DeadLetterNotices } from "./dead-letter-notices.js";
import { Ghosts } from "./ghosts.js";
import { MatrixRouter } from "./matrix-router.js";
import { OutboxWorker } from "./outbox-worker.js";
import { Portals } from "./portals.js";
import { RemoteContext, type RemoteContextParts } from "./remote-context.js";
import { Readiness } from "./readiness.js";
import { RemoteDelivery } from "./remote-delivery.js";
import { BRIDGEKIT_VERSION } from "../common/version.js";
import { sweepSpool } from "../media/spool.js";
import { Commands } from "../commands/commands.js";
import { createProvisioning } from "../provisioning/index.js";
import { LoginProcesses } from "../users/login-processes.js";
import { Logins } from "../users/logins.js";
import { Permissions } from "../users/permissions.js";
import { SecretBox } from "../users/secret-box.js";
import { UserStore } from "../users/user-store.js";
import { BridgeProvisioning } from "./bridge-provisioning.js";
import { Carriers } from "./carriers.js";
import { DirectChats } from "./direct-chats.js";
import { LoginContext } from "./session-context.js";
import { PuppetActors } from "./puppet-actors.js";
import { DoublePuppetError, DoublePuppets } from "../users/double-puppet.js";
import { UserFacingError } from "../users/errors.js";
import type { DoublePuppetCheck } from "../commands/types.js";
import { MediaLinks } from "../media/media-links.js";
import { createMediaLinkRoute } from "../media/link-route.js";
import { BridgeInfo } from "../rooms/bridge-info.js";
import { RoomUpgrades } from "../rooms/room-upgrades.js";
import { PrivatePortals } from "../rooms/private-portals.js";
import { Spaces } from "../rooms/spaces.js";
import { BridgeCrypto } from "./bridge-crypto.js";
import { Backfill } from "../backfill/backfill.js";

export interface BridgeOptions {
  config: BridgeConfig;
  registration: Registration;
  adapter: RemoteNetworkAdapter;
  store: Store;
  logger: Logger;
  /** Close the store on stop (true when the Bridge opened it). */
  ownsStore?: boolean;
  /** The double-puppet registration (config doublePuppet.registration, loaded), if any. */
  doublePuppetRegistration?: Registration;
  /** For tests and benchmarks: the fetch the homeserver client uses, and a request counter. */
  fetch?: typeof fetch;
  onRequest?: ConstructorParameters<typeof HomeserverClient>[0]["onRequest"];
  /** Outbox retry delays (defaults 500 ms doubling to 60 s). */
  outboxRetry?: { minDelayMs?: number; maxDelayMs?: number };
  /** Wait after a failed history fetch, doubling (default 1000 ms). */
  backfillRetryDelayMs?: number;
  /** `/ready`: how long a homeserver check counts (default 5000 ms), how long a check may take (3000 ms). */
  readiness?: { homeserverIntervalMs?: number; timeoutMs?: number };
}

/** What `Bridge.fromConfig` takes instead of loading it from the config. */
export interface BridgeParts {
  /** Default: a JSON logger at the config's logging.level. */
  logger?: Logger;
  /** Default: the registration file the config names. */
  registration?: Registration;
  /** Default: the config's adapter module, given its adapter.config. */
  adapter?: RemoteNetworkAdapter;
  /** Default: the config's store, opened here and closed by `stop`; a store given is left open. */
  store?: Store;
}

/**
 * One running bridge: the application-service API the homeserver pushes to, the client that
 * acts on the homeserver, the store, and the adapter. `Bridge.fromConfig` builds one from a
 * loaded config; `start` and `stop` run it.
 */
export class Bridge {
  readonly client: HomeserverClient;
  readonly appservice: Appservice;
  readonly portals: Portals;
  readonly ghosts: Ghosts;
  readonly context: RemoteContext;
  readonly router: MatrixRouter;
  /** Bridge users: management rooms, logins (src/users). */
  readonly users: UserStore;
  /** The logins while the bridge runs; undefined when the adapter has no logins capability. */
  readonly logins: Logins | undefined;
  readonly commands: Commands;
  private readonly loginProcesses: LoginProcesses | undefined;
  private readonly notices: DeadLetterNotices;
  private readonly actionWorker: OutboxWorker<JsonValue>;
  /** Remote -> Matrix actions not yet delivered (read at start for the spool sweep). */
  private readonly actions: Outbox<JsonValue>;
  private readonly profileWorker: OutboxWorker<JsonValue>;
  /** History fills (src/backfill). */
  private readonly backfill: Backfill;
  private readonly log: Logger;
  /** End-to-bridge encryption; undefined unless encryption.allow. */
  private readonly crypto: BridgeCrypto | undefined;
  private readonly readiness: Readiness;
  private readonly metrics: BridgeMetrics;
  private started = false;
  /** Settles when the stored logins' first connects at start did (see `start`). */
  private loginsStarted: Promise<void> | undefined;
  private port: number | undefined;
  private lease: WriterLease | undefined;
  private settleLeaseLost!: (reason: string) => void;
  /**
   * Resolves (with why) if this process loses the store's writer lease while it runs: it can
   * no longer write, and should stop and exit (`bridgekit start` exits with 1).
   */
  readonly leaseLost: Promise<string>;
  /** Settles when adapter.start does; pushed events wait for it (see MatrixRouter). */
  private readonly adapterStarted: Promise<void>;
  private settleAdapterStart!: (err?: Error) => void;

  /**
   * A bridge from an already loaded config (see `loadConfig`): logs its warnings, then loads
   * whatever `parts` does not give, in this order: the registration it names, the adapter
   * module, the store (which the Bridge then closes on stop). Reads no config file.
   */
  static async fromConfig(config: BridgeConfig, parts: BridgeParts = {}): Promise<Bridge> {
    const log = parts.logger ?? createLogger({ level: config.logging.level, name: "bridgekit" });
    for (const warning of config.warnings) log.warn(warning);
    const registration = parts.registration ?? (await loadRegistration(config.appservice.registration));
    const adapter =
      parts.adapter ??
      (await loadAdapter(config.adapter.module, config.configDir, {
        config: config.adapter.config,
        log: log.child({ adapter: true }),
      }));
    const ownsStore = parts.store === undefined;
    const doublePuppet =
      config.doublePuppet.registration === undefined
        ? undefined
        : await loadRegistration(config.doublePuppet.registration);
    const store = parts.store ?? (await openStore(config.store, { baseDir: config.configDir }));
    return new Bridge({
      config,
      registration,
      adapter,
      store,
      logger: log,
      ownsStore,
      ...(doublePuppet ? { doublePuppetRegistration: doublePuppet } : {}),
    });
  }

  /** `loadConfig(path, env)` (env overrides included), then `fromConfig`. */
  static async fromConfigFile(
    path: string,
    env: NodeJS.ProcessEnv = process.env,
    logger?: Logger,
  ): Promise<Bridge> {
    return Bridge.fromConfig(await loadConfig(path, env), logger === undefined ? {} : { logger });
  }

  constructor(private readonly o: BridgeOptions) {
    const { config, registration, adapter } = o;
    // Every repository writes through the lease's fence: nothing is written before start took
    // the lease, or after it was lost (see src/store/lease.ts).
    const store = fencedStore(o.store, () => this.lease);
    this.leaseLost = new Promise((resolve) => (this.settleLeaseLost = resolve));
    const domain = config.homeserver.domain;
    this.log = o.logger;
    this.adapterStarted = new Promise<void>((resolve, reject) => {
      this.settleAdapterStart = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.adapterStarted.catch(() => undefined); // observed by waiting events; never unhandled
    const matcher = new NamespaceMatcher(registration, domain);
    this.client = new HomeserverClient({
      homeserverUrl: config.homeserver.url,
      domain,
      registration,
      store,
      logger: this.log.child({ part: "client" }),
      concurrency: config.client.concurrency,
      requestTimeoutMs: config.client.requestTimeoutMs,
      // The config counts retries; the client counts attempts (the first one included).
      retry: { maxAttempts: config.client.retryAttempts + 1, maxDelayMs: config.client.maxBackoffMs },
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.onRequest ? { onRequest: o.onRequest } : {}),
      onResponse: (info) => this.metrics.observeResponse(info),
    });
    this.crypto = config.encryption.allow
      ? new BridgeCrypto({
          config: config.encryption,
          store,
          client: this.client,
          log: this.log.child({ part: "crypto" }),
        })
      : undefined;
    const ghostTemplate = new IdTemplate(config.bridge.ghosts, domain);
    const portalTemplate =
      config.bridge.portals !== undefined ? new IdTemplate(config.bridge.portals, domain) : undefined;
    // Media: attachments are spooled at ctx.send, uploaded once at delivery; avatars once by URL.
    const mediaDir = config.media.spoolDir;
    const avatars = new Avatars({
      client: this.client,
      records: store.namespace<string>("media-avatars"),
      dir: mediaDir,
      maxBytes: config.media.maxBytes,
      log: this.log.child({ part: "avatars" }),
    });
    const attachments = new Attachments({
      dir: mediaDir,
      maxBytes: config.media.maxBytes,
      uploadLimit: new UploadLimit(this.client, this.log.child({ part: "media" })),
    });
    const uploads = new MediaUploads(
      this.client,
      store.namespace<string>("media-uploads"),
      this.log.child({ part: "media" }),
    );
    this.ghosts = new Ghosts(ghostTemplate, this.client, new GhostStore(store), avatars);
    this.portals = new Portals(
      portalTemplate,
      this.client,
      new PortalStore(store),
      this.ghosts,
      adapter,
      this.log,
      avatars,
    );
    const messages = new MessageMap(store);
    const bridgeInfo = new BridgeInfo({ bridgeId: registration.id, client: this.client, adapter, avatars });
    this.portals.bridgeInfo = bridgeInfo;
    const delivery = new RemoteDelivery(
      this.client,
      adapter,
      this.portals,
      this.ghosts,
      messages,
      this.log,
      uploads,
      avatars,
    );
    delivery.bridgeInfo = bridgeInfo;
    const actions = new Outbox<JsonValue>(store, { namespace: "outbox" });
    this.actions = actions;
    const profiles = new Outbox<JsonValue>(store, { namespace: "outbox-profiles" });
    const deadLetters = store.namespace<never>("outbox-dead");
    const backfill = new Backfill({
      config: config.backfill,
      store,
      outbox: actions,
      kick: (key) => this.actionWorker.kick(key),
      portals: this.portals,
      messages,
      adapter,
      sessionOf: (login) => {
        const live = this.logins?.get(login);
        if (live === undefined) return undefined;
        return live.state === "connected" ? (live.session ?? null) : null;
      },
      checkUser: (remoteId) => void this.ghosts.userId(remoteId),
      attachments,
      setProfile: (user, profile) => this.context.setProfile(user, profile),
      ready: () => this.adapterStarted,
      log: this.log.child({ part: "backfill" }),
      ...(o.backfillRetryDelayMs !== undefined ? { retryDelayMs: o.backfillRetryDelayMs } : {}),
    });
    this.backfill = backfill;
    if (backfill.enabled) {
      delivery.history = backfill;
      this.portals.onCreated = (portal) => backfill.portalCreated(portal);
    }
    this.actionWorker = new OutboxWorker({
      outbox: actions,
      deliver: (item) => delivery.deliver(item),
      ...(backfill.enabled ? { before: (key: string) => backfill.before(key) } : {}),
      deadLetters,
      log: this.log.child({ part: "outbox" }),
      onDeadLetter: () => this.metrics.countOutboxDeadLetter("actions"),
      ...o.outboxRetry,
    });
    this.profileWorker = new OutboxWorker({
      outbox: profiles,
      deliver: (item) => delivery.deliverProfile(item),
      deadLetters,
      log: this.log.child({ part: "profiles" }),
      onDeadLetter: () => this.metrics.countOutboxDeadLetter("profiles"),
      ...o.outboxRetry,
    });
    const kv = new AdapterKV(store);
    const { publicUrl, linkKey, linkTtlMs } = config.media;
    if (publicUrl !== undefined && linkKey === undefined)
      throw new Error("config media.linkKey is required with media.publicUrl (it signs the links)");
    const mediaLinks =
      publicUrl !== undefined && linkKey !== undefined
        ? new MediaLinks({ publicUrl, linkKey, ttlMs: linkTtlMs })
        : undefined;
    const contextParts: RemoteContextParts = {
      adapter,
      messages,
      client: this.client,
      portals: this.portals,
      ghosts: this.ghosts,
      actions,
      profiles,
      actionWorker: this.actionWorker,
      profileWorker: this.profileWorker,
      kv: {
        get: async <V>(k: string) => (await kv.get(k)) as V | undefined,
        set: (k: string, v: unknown) => kv.set(k, v as JsonValue),
        delete: (k: string) => kv.delete(k),
      },
      log: this.log.child({ adapter: adapter.name }),
      domain,
      attachments,
      mediaMaxBytes: config.media.maxBytes,
      retryNow: () => this.appservice.retryNow(),
      ...(mediaLinks ? { mediaLinks } : {}),
      ...(backfill.enabled ? { backfill } : {}),
    };
    this.context = new RemoteContext(contextParts);

    // Users, logins and commands (src/users, src/commands).
    const permissions = new Permissions(config.permissions);
    const key = config.logins.encryptionKey;
    this.users = new UserStore(store, key === undefined ? undefined : SecretBox.fromKey(key));
    const botUserId = this.client.botUserId;
    const loginHint = `send \`login\` to ${botUserId}`;
    const capability = adapter.logins;
    if (capability) {
      const live: Logins = new Logins({
        capability,
        store: this.users,
        contextFor: (login) => new LoginContext(contextParts, login, live),
        tell: (userId, text) => this.commands.tell(userId, text),
        onConnected: (login) => {
          this.appservice.retryNow();
          this.backfill.loginConnected(login.id);
        },
        log: this.log.child({ part: "logins" }),
        concurrency: config.logins.connectConcurrency,
      });
      this.logins = live;
      const invites = new PrivatePortals({
        client: this.client,
        userOfLogin: (loginId) => live.get(loginId)?.userId,
        log: this.log.child({ part: "private-portals" }),
      });
      this.portals.inviteLogins = (portal, remoteIds) => invites.invite(portal, remoteIds);
      this.loginProcesses = new LoginProcesses({
        capability,
        complete: async (user, login) => (await live.add(user.userId, login)).id,
        timeoutMs: config.logins.processTimeoutMs,
        waitTimeoutMs: config.logins.waitTimeoutMs,
        log: this.log.child({ part: "login-processes" }),
      });
    }
    const logins =
      this.logins && this.loginProcesses ? { live: this.logins, processes: this.loginProcesses } : undefined;
    // Double puppeting: a login's own messages from other clients appear as its user.
    let checkDoublePuppet: DoublePuppetCheck | undefined;
    if (this.logins) {
      const puppets = new DoublePuppets({
        client: this.client,
        ...(o.doublePuppetRegistration ? { registration: o.doublePuppetRegistration } : {}),
        marker: registration.id,
        logger: this.log.child({ part: "double-puppets" }),
      });
      const actors = new PuppetActors({
        puppets,
        users: this.users,
        logins: this.logins,
        tell: (userId, text) => this.commands.tell(userId, text),
        log: this.log.child({ part: "double-puppets" }),
      });
      delivery.asUser = (loginId) => actors.forLogin(loginId);
      contextParts.puppet = (loginId) => actors.forLogin(loginId);
      this.portals.onDmCreated = (loginId, roomId) => actors.join(loginId, roomId);
      checkDoublePuppet = async (userId, token) => {
        actors.reset(userId);
        try {
          await puppets.withToken(userId, token);
        } catch (err) {
          if (err instanceof DoublePuppetError) throw new UserFacingError("bad_input", err.message);
          throw err;
        }
      };
    }
    const prefix = config.commands.prefix ?? `!${adapter.name}`;
    this.commands = new Commands({
      adapter,
      prefix,
      version: BRIDGEKIT_VERSION,
      permissions,
      users: this.users,
      portals: this.portals,
      bot: this.client.intent(botUserId),
      ...(logins ? { logins } : {}),
      ...(checkDoublePuppet ? { checkDoublePuppet } : {}),
      log: this.log.child({ part: "commands" }),
    });
    const direct = new DirectChats({
      client: this.client,
      ghosts: this.ghosts,
      portals: this.portals,
      permissions,
      ...(this.logins ? { logins: this.logins } : {}),
      adapterName: adapter.name,
      loginHint,
      log: this.log.child({ part: "direct-chats" }),
    });
    const carriers = new Carriers({
      adapter,
      permissions,
      ...(this.logins ? { logins: this.logins } : {}),
      loginHint,
      relayFormat: config.logins.relayFormat,
      relayEmoteFormat: config.logins.relayEmoteFormat,
    });
    const provisioning =
      config.provisioning.sharedSecret === undefined
        ? undefined
        : createProvisioning({
            service: new BridgeProvisioning({
              adapter,
              permissions,
              info: {
                networkName: adapter.name,
                networkId: adapter.name,
                botUserId,
                commandPrefix: prefix,
                homeserver: domain,
              },
              users: this.users,
              ...(logins ? { logins } : {}),
              direct,
              ghosts: this.ghosts,
              callTimeoutMs: config.appservice.handlerTimeoutMs,
              log: this.log.child({ part: "provisioning" }),
            }),
            sharedSecret: config.provisioning.sharedSecret,
            homeserverUrl: config.homeserver.url,
            log: this.log.child({ part: "provisioning" }),
            bodyLimitBytes: 64 * 1024,
          });
    const spaces =
      config.bridge.spaces === "off"
        ? undefined
        : new Spaces({
            mode: config.bridge.spaces,
            client: this.client,
            records: store.namespace<string>("spaces"),
            networkName: adapter.bridgeInfo?.protocol?.displayName ?? adapter.name,
            loginOf: (loginId) => this.logins?.get(loginId),
            log: this.log.child({ part: "spaces" }),
          });
    if (spaces) this.portals.onPortalFor = (portal, login) => spaces.portalFor(portal, login);
    const upgrades = new RoomUpgrades({
      client: this.client,
      portals: this.portals,
      bridgeInfo,
      log: this.log.child({ part: "room-upgrades" }),
      ...(spaces ? { onMoved: (before, after) => spaces.moved(before, after) } : {}),
    });
    this.router = new MatrixRouter({
      adapter,
      onTombstone: (portal, event) => upgrades.follow(portal, event),
      ...(this.logins ? { sessionsOf: (userId: string) => this.sessionsOf(userId) } : {}),
      carriers,
      commands: this.commands,
      doublePuppetMarker: registration.id,
      onGhostInvite: (event, call) => direct.onGhostInvite(event, call),
      client: this.client,
      matcher,
      portals: this.portals,
      messages,
      ghosts: this.ghosts,
      log: this.log.child({ part: "router" }),
      adapterReady: () => this.adapterStarted,
    });
    this.notices = new DeadLetterNotices({
      client: this.client,
      portals: this.portals,
      log: this.log.child({ part: "notices" }),
      unsupported: config.bridge.unsupportedNotice,
      failed: config.inbox.deadLetterNotice,
    });
    this.readiness = new Readiness({
      adapterStarted: () => this.started,
      store,
      homeserver: () => this.client.versions({ attempts: 1 }),
      ...o.readiness,
    });
    this.appservice = createAppservice({
      ready: () => this.readiness.check(),
      registration,
      domain,
      store,
      handlers: this.handlers(),
      logger: this.log.child({ part: "appservice" }),
      bodyLimitBytes: config.appservice.maxBodyBytes,
      handlerTimeoutMs: config.appservice.handlerTimeoutMs,
      concurrency: config.appservice.roomConcurrency,
      inbox: { transactions: config.inbox.transactions, maxPendingItems: config.inbox.maxPendingItems },
      retry: config.inbox.retry,
      deadLetters: { max: config.inbox.maxDeadLetters },
      extraMiddleware: [
        ...(provisioning ? [provisioning] : []),
        ...(mediaLinks
          ? [
              createMediaLinkRoute({
                signer: mediaLinks.signer,
                homeserverUrl: config.homeserver.url,
                asToken: registration.as_token,
                log: this.log.child({ part: "media-links" }),
                timeoutMs: config.client.requestTimeoutMs,
              }),
            ]
          : []),
      ],
      metrics: config.metrics.enabled
        ? {
            ...(config.metrics.port !== undefined
              ? { port: config.metrics.port, host: config.metrics.host }
              : {}),
          }
        : false,
    });
    this.metrics = new BridgeMetrics(
      this.appservice.metrics,
      [
        { queue: "actions", outbox: actions },
        { queue: "profiles", outbox: profiles },
      ],
      this.log.child({ part: "metrics" }),
    );
  }

  /** The port the appservice listens on, once started. */
  get listeningPort(): number | undefined {
    return this.port;
  }

  /**
   * Takes the store's writer lease (a standby waits for it; `signal` ends the wait), brings the
   * store's layout up to date (refusing one written by a newer bridgekit), listens,
   * checks the homeserver both ways, resumes undelivered outbox items, and starts the adapter. Rejects with a clear message when the homeserver cannot be reached.
   */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { config } = this.o;
    this.lease ??= await acquireWriterLease(config.store, this.o.store, {
      prefix: this.o.store.prefix,
      ttlMs: config.lease.ttlMs,
      standby: config.lease.standby,
      baseDir: config.configDir,
      log: this.log.child({ part: "lease" }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    this.lease.onLost((reason) => this.settleLeaseLost(reason));
    await migrateStore(this.o.store, this.log.child({ part: "store" }));
    const listening = await this.appservice.listen(config.appservice.port, config.appservice.host);
    this.port = listening.port;
    this.log.info({ host: config.appservice.host, port: this.port }, "application service listening");
    try {
      const versions = await this.client.versions();
      this.log.info({ versions: versions.versions.slice(-3) }, "homeserver reachable");
    } catch (err) {
      await this.appservice.close();
      throw new Error(`cannot reach the homeserver at ${config.homeserver.url}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    await this.checkHomeserverReachesUs();
    const bot = this.client.intent(this.client.botUserId);
    await bot.ensureRegistered();
    if (config.bridge.botDisplayName !== undefined) {
      await bot.setDisplayName(config.bridge.botDisplayName).catch((err: unknown) => {
        this.log.warn({ err }, "could not set the bot's display name");
      });
    }
    try {
      await this.crypto?.start();
    } catch (err) {
      throw await this.abortStart(err, "end-to-bridge encryption could not start");
    }
    await this.sweepSpool();
    // Stored history fills first: each runs before its room's next queued item.
    if (this.backfill.enabled) {
      const tasks = await this.backfill.load();
      if (tasks > 0) this.log.info({ tasks }, "backfills resumed");
    }
    await this.actionWorker.start();
    await this.profileWorker.start();
    try {
      // Known logins are in memory before events flow, so a user's events wait for their login.
      if (this.logins) this.log.info({ logins: await this.logins.load() }, "logins loaded");
    } catch (err) {
      throw await this.abortStart(err, "could not read the stored logins");
    }
    try {
      await this.o.adapter.start(this.context);
    } catch (err) {
      throw await this.abortStart(err, `the ${this.o.adapter.name} adapter failed to start`);
    }
    this.settleAdapterStart();
    this.started = true;
    this.log.info({ adapter: this.o.adapter.name }, "bridge started");
    // Stored logins reconnect in the background: the bridge serves meanwhile, and events of
    // a user whose login is still connecting wait for it (see Carriers).
    if (this.logins) {
      this.loginsStarted = this.logins.startAll().then(
        () => undefined,
        (err: unknown) => this.log.error({ err }, "could not reconnect the stored logins"),
      );
    }
  }

  /**
   * Deletes spool files no queued action refers to (left by a crash between reading an
   * attachment and queueing it). Before anything can spool: the workers and the adapter have
   * not started. A failure is logged, never fatal: the files only take disk space.
   */
  private async sweepSpool(): Promise<void> {
    try {
      const keep = new Set<string>();
      for await (const item of this.actions.pending()) {
        const media = (item.payload as { media?: { path?: unknown; thumbnail?: { path?: unknown } } } | null)
          ?.media;
        for (const path of [media?.path, media?.thumbnail?.path])
          if (typeof path === "string") keep.add(path);
      }
      const deleted = await sweepSpool(this.o.config.media.spoolDir, keep);
      if (deleted > 0) this.log.info({ deleted }, "deleted spool files left by a crash");
    } catch (err) {
      this.log.warn({ err }, "could not sweep the media spool");
    }
  }

  /** Undoes a start that failed after listening; returns the error to throw, saying `what`. */
  private async abortStart(err: unknown, what: string): Promise<Error> {
    this.settleAdapterStart(new Error(`the ${this.o.adapter.name} adapter did not start`, { cause: err }));
    await this.appservice.close();
    this.backfill.stop();
    await this.actionWorker.stop();
    await this.profileWorker.stop();
    return new Error(`${what}: ${(err as Error).message}`, { cause: err });
  }

  /** Stops accepting, finishes what is in flight, stops the adapter, flushes and closes. */
  async stop(): Promise<void> {
    this.log.info("bridge stopping");
    await this.appservice.close();
    if (this.started) {
      await this.loginProcesses?.close();
      await this.logins?.stopAll();
      await this.loginsStarted;
      try {
        await this.o.adapter.stop();
      } catch (err) {
        this.log.error({ err }, "adapter stop failed");
      }
    }
    this.backfill.stop();
    await this.actionWorker.stop();
    await this.profileWorker.stop();
    await this.crypto?.stop();
    await this.client.close();
    await this.lease
      ?.release()
      .catch((err: unknown) => this.log.warn({ err }, "could not release the writer lease"));
    this.lease = undefined;
    if (this.o.ownsStore) await this.o.store.close();
    this.started = false;
    this.log.info("bridge stopped");
  }

  /** The connected sessions of a Matrix user's logins. */
  private sessionsOf(userId: string): RemoteSession[] {
    const out: RemoteSession[] = [];
    for (const login of this.logins?.liveOf(userId) ?? [])
      if (login.state === "connected" && login.session) out.push(login.session);
    return out;
  }

  /** Resolves once every stored login was tried once after start (tests, benchmarks). */
  async loginsConnected(): Promise<void> {
    await this.loginsStarted;
  }

  /** Resolves once every queued remote -> Matrix action was delivered (tests, benchmarks). */
  async flush(): Promise<void> {
    await this.actionWorker.idle();
    await this.profileWorker.idle();
  }

  private async checkHomeserverReachesUs(): Promise<void> {
    try {
      const { duration_ms } = await this.client.ping(`bridgekit-start-${Date.now()}`);
      this.log.info({ durationMs: duration_ms }, "the homeserver reaches the bridge");
    } catch (err) {
      if (err instanceof MatrixError && (err.errcode === "M_UNRECOGNIZED" || err.status === 404)) {
        this.log.warn(
          "the homeserver does not support the appservice ping; cannot check it reaches the bridge",
        );
        return;
      }
      this.log.error(
        { err, url: this.o.registration.url },
        "the homeserver cannot reach the bridge at the registration's url: check the url, the bridge's host/port and any firewall",
      );
    }
  }

  private handlers(): AppserviceHandlers {
    const adapter = this.o.adapter;
    const routed = this.router.handlers();
    const crypto = this.crypto;
    const handlers: AppserviceHandlers = {
      ...routed,
      ...(crypto
        ? {
            ...crypto.handlers(),
            onEvent: async (event, call) => routed.onEvent(await crypto.plain(event), call),
          }
        : {}),
      holdsSecret: (event) => this.commands.holdsSecret(event),
      queryUser: async (userId, call) => {
        const remoteId = this.ghosts.remoteId(userId);
        if (remoteId === null || !adapter.queryUser) return false;
        const profile = await adapter.queryUser(remoteId, call);
        if (!profile) return false;
        await this.ghosts.applyProfile(remoteId, profile); // registers the ghost before we answer
        return true;
      },
      queryRoomAlias: (alias, call) => this.portals.queryAlias(alias, call),
      onDeadLetter: (letter) => this.notices.deadLetter(letter),
      userFromUri: (uri) => {
        const remoteId = adapter.userFromUri?.(uri) ?? null;
        return Promise.resolve(remoteId === null ? null : this.ghosts.userId(remoteId));
      },
      aliasFromUri: (uri) => {
        const remoteId = adapter.roomFromUri?.(uri) ?? null;
        return Promise.resolve(remoteId === null ? null : this.portals.aliasFor(remoteId));
      },
      onPing: (transactionId) => {
        this.log.info({ transactionId }, "pinged by the homeserver");
        return Promise.resolve();
      },
    };
    const thirdParty = this.thirdParty();
    if (thirdParty) handlers.thirdParty = thirdParty;
    return handlers;
  }

  private thirdParty(): ThirdPartyHandlers | undefined {
    const tp = this.o.adapter.thirdParty;
    if (!tp) return undefined;
    const out: ThirdPartyHandlers = {
      getProtocol: (protocol) =>
        Promise.resolve(Object.hasOwn(tp.protocols, protocol) ? tp.protocols[protocol]! : null),
    };
    if (tp.lookupUser) {
      const lookup = tp.lookupUser.bind(tp);
      out.lookupUser = async (protocol, fields, call) =>
        (await lookup(protocol, fields, call)).map((id) => ({
          userid: this.ghosts.userId(id),
          protocol,
          fields,
        }));
    }
    if (tp.lookupLocation) {
      const lookup = tp.lookupLocation.bind(tp);
      out.lookupLocation = async (protocol, fields, call) =>
        (await lookup(protocol, fields, call)).map((id) => ({
          alias: this.portals.aliasFor(id),
          protocol,
          fields,
        }));
    }
    // Reverse lookups: the framework maps the Matrix id to the remote one (anything that is
    // not a ghost or a portal alias is answered "none" without asking the adapter).
    if (tp.reverseLookupUser) {
      const lookup = tp.reverseLookupUser.bind(tp);
      out.reverseLookupUser = async (userId, call) => {
        const remoteId = this.ghosts.remoteId(userId);
        if (remoteId === null) return [];
        const matches = this.knownProtocols(await lookup(remoteId, call), "reverseLookupUser");
        return matches.map(({ protocol, fields }) => ({ userid: userId, protocol, fields }));
      };
    }
    if (tp.reverseLookupLocation) {
      const lookup = tp.reverseLookupLocation.bind(tp);
      out.reverseLookupLocation = async (alias, call) => {
        const remoteId = this.portals.remoteIdOfAlias(alias);
        if (remoteId === null) return [];
        const matches = this.knownProtocols(await lookup(remoteId, call), "reverseLookupLocation");
        return matches.map(({ protocol, fields }) => ({ alias, protocol, fields }));
      };
    }
    return out;
  }

  /** The adapter's matches for protocols it describes; others are dropped with a warning. */
  private knownProtocols(matches: ThirdPartyMatch[], method: string): ThirdPartyMatch[] {
    if (!Array.isArray(matches)) throw new TypeError(`thirdParty.${method} did not return an array`);
    const protocols = this.o.adapter.thirdParty?.protocols ?? {};
    return matches.filter((m) => {
      const known = typeof m?.protocol === "string" && Object.hasOwn(protocols, m.protocol);
      if (!known)
        this.log.warn({ method, protocol: m?.protocol }, "third-party match for an unknown protocol dropped");
      return known;
    });
  }
}
