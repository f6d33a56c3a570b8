import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Router from "@koa/router";
import Koa, { type Middleware } from "koa";
import type { Registry } from "prom-client";
import { silentLogger, type Logger } from "../common/logger.js";
import { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";
import { DeadLetters, type DeadLettersOptions } from "../inbox/dead-letters.js";
import { Inbox, type InboxOptions } from "../inbox/inbox.js";
import { Lanes } from "../inbox/lanes.js";
import { inboxRetryPolicy, type InboxRetryPolicy } from "../inbox/retry-policy.js";
import type { Store } from "../store/store.js";
import { TokenChecker } from "./auth.js";
import { DEFAULT_BODY_LIMIT_BYTES, parseJsonBody, readRawBody } from "./body.js";
import { deadLetterRoutes } from "./dead-letter-routes.js";
import { MatrixHttpError } from "./errors.js";
import type { AppserviceHandlers } from "./handlers.js";
import { AppserviceMetrics } from "./metrics.js";
import {
  decodeParams,
  pathPattern,
  registerRoutes,
  unmatched,
  type MatchedRoute,
  type Route,
} from "./router.js";
import { appserviceRoutes } from "./routes.js";
import { TransactionProcessor } from "./transaction-processor.js";

/** One readiness check's outcome: fine, or what is wrong (short, no secrets). */
export type ReadinessResult = { ok: true } | { ok: false; error: string };

/**
 * Says whether the caller is ready to work, per named check (e.g. adapter, store,
 * homeserver). Called on every `GET /ready`: keep it cheap (cache what is costly) and bounded.
 */
export type ReadinessCheck = () => Promise<Record<string, ReadinessResult>>;

export interface AppserviceOptions {
  registration: Registration;
  /** The homeserver's server name, e.g. "example.org" (namespaces match local ids only). */
  domain: string;
  handlers: AppserviceHandlers;
  /** Where the inbox and its dead letters live (namespaces "inbox" and "inbox-dead"). */
  store: Store;
  logger?: Logger;
  /** The largest request body accepted, in bytes (default 16 MiB). */
  bodyLimitBytes?: number;
  /** How long one handler call may take before it counts as failed and is retried (default 30 000 ms). */
  handlerTimeoutMs?: number;
  /** How many rooms are handled in parallel (default 8). */
  concurrency?: number;
  /** Transactions processed at once before 429 (default 16; Synapse sends one at a time). */
  maxInFlightTransactions?: number;
  /** How many transaction ids and event ids the inbox remembers, and how many items it holds. */
  inbox?: InboxOptions;
  /** How failed items are retried before they become dead letters. */
  retry?: Partial<InboxRetryPolicy>;
  deadLetters?: DeadLettersOptions;
  /**
   * Prometheus metrics: served at `path` (default "/metrics") on the main port, or on a
   * separate listener when `port` is given (`host` defaults to 127.0.0.1); `false` to not
   * serve them (the registry is still returned).
   */
  metrics?: false | { path?: string; port?: number; host?: string };
  /**
   * What `GET /ready` checks besides "not closing" (the Bridge checks its adapter, store and
   * homeserver). Without it, /ready answers like /health.
   */
  ready?: ReadinessCheck;
  /**
   * Koa middleware run on the main listener before the application-service routes and their
   * hs_token check, e.g. the provisioning API (createProvisioning): each answers the paths it
   * owns and passes the others on with `next()`.
   */
  extraMiddleware?: readonly Middleware[];
}

export interface ListenResult {
  /** The port the application service listens on (useful when asked for port 0). */
  port: number;
  /** The metrics port, when metrics are served separately. */
  metricsPort?: number;
}

export interface Appservice {
  /** The koa app (for supertest or for mounting); metrics are on it unless served separately. */
  readonly app: Koa;
  /** The separate metrics app, when `metrics.port` is set. */
  readonly metricsApp: Koa | undefined;
  /** This application service's own Prometheus registry (not the global default). */
  readonly metrics: Registry;
  /** Items given up on; see also `retryDeadLetter`. */
  readonly deadLetters: DeadLetters;
  /** Sends a dead letter through its room's lane again; false if there is none with that id. */
  retryDeadLetter(id: string): Promise<boolean>;
  /** The remote network is back: every room waiting to retry an item tries at once. */
  retryNow(): void;
  /** Resolves once every recorded item was handled or dead-lettered (tests, benchmarks). */
  drain(): Promise<void>;
  /**
   * Opens the inbox and resumes what the last run left unhandled (listen does this; the
   * first transaction does it otherwise).
   */
  start(): Promise<void>;
  /** Starts listening (and the metrics listener, if separate); resumes the inbox first. */
  listen(port: number, host?: string): Promise<ListenResult>;
  /**
   * Stops accepting connections, lets requests in flight finish and handler calls running
   * settle (their signal is aborted), then resolves. Items not handled yet stay in the
   * inbox for the next start. Does not close the store (it belongs to the caller).
   */
  close(): Promise<void>;
}

/**
 * Creates the koa app the homeserver pushes to: `PUT /transactions`, user and alias queries,
 * third-party lookups, ping, plus `/health`, `/ready` and metrics. See docs/appservice.md.
 */
export function createAppservice(options: AppserviceOptions): Appservice {
  const logger = options.logger ?? silentLogger();
  const bodyLimit = positive("bodyLimitBytes", options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES);
  const handlerTimeoutMs = positive("handlerTimeoutMs", options.handlerTimeoutMs ?? 30_000);
  const concurrency = positive("concurrency", options.concurrency ?? 8);
  const maxInFlight = positive("maxInFlightTransactions", options.maxInFlightTransactions ?? 16);
  if (typeof options.handlers?.onEvent !== "function") {
    throw new TypeError("createAppservice: handlers.onEvent must be a function");
  }

  const matcher = new NamespaceMatcher(options.registration, options.domain);
  const tokens = new TokenChecker(options.registration.hs_token);
  const holdsSecret = options.handlers.holdsSecret?.bind(options.handlers);
  const inbox = new Inbox(options.store, {
    ...options.inbox,
    ...(holdsSecret ? { withhold: holdsSecret } : {}),
  });
  const deadLetters = new DeadLetters(options.store, {
    ...options.deadLetters,
    secrets: [options.registration.hs_token, options.registration.as_token],
  });
  const metrics: AppserviceMetrics = new AppserviceMetrics(
    (): number => lanes.depth,
    (): number => processor.inFlightCount,
    { pendingItems: () => inbox.pendingItems, waitingRetry: () => lanes.waitingRetry },
  );
  const onDeadLetter = options.handlers.onDeadLetter?.bind(options.handlers);
  const lanes: Lanes = new Lanes({
    logger,
    metrics,
    concurrency,
    handlerTimeoutMs,
    retry: inboxRetryPolicy(options.retry),
    deadLetters,
    ...(onDeadLetter ? { onDeadLetter } : {}),
  });
  const processor = new TransactionProcessor({
    inbox,
    lanes,
    deadLetters,
    handlers: options.handlers,
    logger,
    metrics,
    maxInFlight,
    handlerTimeoutMs,
  });

  let closing = false;
  const separateMetrics = options.metrics !== false && options.metrics?.port !== undefined;
  const metricsPath = (options.metrics !== false && options.metrics?.path) || "/metrics";
  const health = healthRoute(() => closing);
  const ready = readyRoute(() => closing, options.ready, logger);
  const metricsRoutes = options.metrics === false ? [] : [metricsRoute(metricsPath, metrics.registry)];
  const routes = [
    ...appserviceRoutes({
      registration: options.registration,
      matcher,
      handlers: options.handlers,
      processor,
      metrics,
      logger,
      handlerTimeoutMs,
    }),
    ...deadLetterRoutes(deadLetters, processor),
    health,
    ready,
    ...(separateMetrics ? [] : metricsRoutes),
  ];

  const app = buildApp(routes, {
    logger,
    metrics,
    tokens,
    bodyLimit,
    isClosing: () => closing,
    extra: options.extraMiddleware ?? [],
  });
  const metricsApp = separateMetrics
    ? buildApp([health, ready, ...metricsRoutes], {
        logger,
        metrics,
        tokens,
        bodyLimit,
        isClosing: () => closing,
        extra: [],
      })
    : undefined;

  const servers: Server[] = [];
  const start = (koa: Koa, port: number, host: string | undefined): Promise<number> =>
    new Promise((resolve, reject) => {
      const handle = koa.callback(); // settles on its own: koa answers every error it sees
      const server = createServer((req, res) => void handle(req, res));
      // Bounds how long a client may take to send a request (headers and body), e.g. a slow
      // drip of a large body; responding is bounded by the handler timeout instead.
      server.requestTimeout = 60_000;
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        servers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });

  return {
    app,
    metricsApp,
    metrics: metrics.registry,
    deadLetters,
    retryDeadLetter: (id) => processor.retryDeadLetter(id),
    retryNow: () => lanes.retryNow(),
    drain: async () => {
      await processor.drain();
      await lanes.drain();
    },
    start: () => processor.start(),
    async listen(port, host) {
      if (closing) throw new Error("this application service was closed");
      await processor.start();
      const result: ListenResult = { port: await start(app, port, host) };
      if (metricsApp && options.metrics !== false && options.metrics?.port !== undefined) {
        result.metricsPort = await start(
          metricsApp,
          options.metrics.port,
          options.metrics.host ?? "127.0.0.1",
        );
      }
      logger.info({ ...result, host }, "application service listening");
      return result;
    },
    async close() {
      closing = true;
      const closed = servers.map(
        (server) =>
          new Promise<void>((resolve, reject) => {
            server.close((err) => (err ? reject(err) : resolve()));
            server.closeIdleConnections();
          }),
      );
      await processor.drain();
      await lanes.close();
      // Sockets that were busy above are idle keep-alives now; without this, close would wait
      // for the peer's keep-alive timeout (Synapse keeps its connection open).
      for (const server of servers) server.closeIdleConnections();
      await Promise.all(closed);
      servers.length = 0;
    },
  };
}

interface BuildContext {
  logger: Logger;
  metrics: AppserviceMetrics;
  tokens: TokenChecker;
  bodyLimit: number;
  isClosing: () => boolean;
  /** Run after errorsAsJson, before the routes (AppserviceOptions.extraMiddleware). */
  extra: readonly Middleware[];
}

/**
 * The middleware chain: errors -> extra middleware -> @koa/router (route match) -> auth ->
 * body -> route handler, then 405 or 404 for what no route took. Routes match the raw path
 * with their own patterns (see pathPattern), so `{userId+}` may hold a `/` and `..%2F..`
 * stays one segment.
 */
function buildApp(routes: Route[], c: BuildContext): Koa {
  const app = new Koa();
  app.silent = true;
  app.on("error", (err: unknown) => c.logger.debug({ err }, "connection error"));
  app.use(errorsAsJson(c));
  for (const middleware of c.extra) app.use(middleware);
  const router = new Router();
  const auth = authenticate(c.tokens);
  const body = readBody(c.bodyLimit);
  registerRoutes(router, routes, async (ctx, route, rawParams) => {
    ctx.state.matched = { route, rawParams } satisfies MatchedRoute;
    await auth(ctx, async () => {
      await body(ctx, async () => {
        await route.handle(ctx, {
          params: decodeParams(rawParams),
          // Parsed only by the routes that read it (not the transaction route).
          get query() {
            return new URLSearchParams(ctx.querystring);
          },
          body: ctx.state.body,
        });
      });
    });
  });
  app.use(router.routes());
  app.use(unmatched());
  return app;
}

/**
 * Turns every error into `{errcode, error}` JSON: MatrixHttpError as it says, a failed
 * transaction as 500 (so the homeserver retries), anything else as a generic 500 that is
 * logged. Logs each request by path only: the query string (access_token) never is.
 */
function errorsAsJson({ logger, metrics, isClosing }: BuildContext): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    if (isClosing()) ctx.set("Connection", "close");
    try {
      await next();
    } catch (err) {
      if (err instanceof MatrixHttpError) {
        ctx.status = err.status;
        ctx.set(err.headers);
        ctx.body = err.toJSON();
        const route = (ctx.state.matched as MatchedRoute | undefined)?.route;
        if (route?.name === "transaction" && err.status >= 400 && err.status < 500 && err.status !== 429) {
          metrics.countTransaction("rejected");
        }
      } else {
        logger.error({ err, method: ctx.method, path: ctx.path }, "request failed");
        ctx.status = 500;
        ctx.body = { errcode: "M_UNKNOWN", error: "internal server error" };
      }
    } finally {
      const route = (ctx.state.matched as MatchedRoute | undefined)?.route.name ?? "unmatched";
      metrics.countResponse(route, ctx.status);
      if (logger.isLevelEnabled("debug"))
        logger.debug(
          {
            method: ctx.method,
            path: ctx.path,
            status: ctx.status,
            ms: Math.round(performance.now() - started),
          },
          "request",
        );
    }
  };
}

function authenticate(tokens: TokenChecker): Middleware {
  return async (ctx, next) => {
    if ((ctx.state.matched as MatchedRoute).route.auth) {
      const header = ctx.get("Authorization");
      const query = ctx.querystring;
      tokens.check({
        authorization: header === "" ? undefined : header,
        queryTokens: query === "" ? [] : new URLSearchParams(query).getAll("access_token"),
      });
    }
    await next();
  };
}

function readBody(limit: number): Middleware {
  return async (ctx, next) => {
    const mode = (ctx.state.matched as MatchedRoute).route.body;
    if (mode) {
      const raw = await readRawBody(ctx.req, limit);
      ctx.state.body = parseJsonBody(raw, mode === "optional" ? {} : undefined);
    }
    await next();
  };
}

function healthRoute(isClosing: () => boolean): Route {
  return {
    name: "health",
    method: "GET",
    pattern: pathPattern("/health"),
    auth: false,
    handle: (ctx) => {
      ctx.status = isClosing() ? 503 : 200;
      ctx.body = { status: isClosing() ? "closing" : "ok" };
      return Promise.resolve();
    },
  };
}

/**
 * `GET /ready`: 200 `{status: "ready", checks}` when every check passed; otherwise 503 with
 * `failed` naming the checks that did not (or `status: "closing"`). No authentication.
 */
function readyRoute(isClosing: () => boolean, check: ReadinessCheck | undefined, logger: Logger): Route {
  return {
    name: "ready",
    method: "GET",
    pattern: pathPattern("/ready"),
    auth: false,
    handle: async (ctx) => {
      if (isClosing()) {
        ctx.status = 503;
        ctx.body = { status: "closing" };
        return;
      }
      let checks: Record<string, ReadinessResult>;
      try {
        checks = check ? await check() : {};
      } catch (err) {
        logger.error({ err }, "the readiness check failed");
        checks = { readiness: { ok: false, error: "the readiness check failed" } };
      }
      const failed = Object.keys(checks).filter((name) => !checks[name]!.ok);
      ctx.status = failed.length === 0 ? 200 : 503;
      ctx.body = failed.length === 0 ? { status: "ready", checks } : { status: "not ready", failed, checks };
    },
  };
}

function metricsRoute(path: string, registry: Registry): Route {
  return {
    name: "metrics",
    method: "GET",
    pattern: pathPattern(path),
    auth: false,
    handle: async (ctx) => {
      ctx.set("Content-Type", registry.contentType);
      ctx.body = await registry.metrics();
    },
  };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`createAppservice: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}
