import type { Context } from "koa";
import type { Logger } from "../common/logger.js";
import { serverName } from "../matrix/events.js";
import type { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";
import { badJson, invalidParam, MatrixHttpError, notFound } from "./errors.js";
import type { AppserviceHandlers, HandlerContext } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
import { pathPattern, type Route, type RouteRequest } from "./router.js";
import { withTimeout } from "./timeout.js";
import { parseTransactionBody } from "./transaction-body.js";
import type { TransactionProcessor } from "./transaction-processor.js";

export interface RouteDeps {
  registration: Registration;
  matcher: NamespaceMatcher;
  handlers: AppserviceHandlers;
  processor: TransactionProcessor;
  metrics: AppserviceMetrics;
  logger: Logger;
  handlerTimeoutMs: number;
}

const V1 = "/_matrix/app/v1";
const UNSTABLE = "/_matrix/app/unstable";

/** Every homeserver-facing route: the v1 paths, the legacy root paths and the unstable ones. */
export function appserviceRoutes(deps: RouteDeps): Route[] {
  const q = new Queries(deps);
  const routes: Route[] = [];
  const add = (
    name: string,
    method: Route["method"],
    templates: string[],
    handle: Route["handle"],
    body?: Route["body"],
  ) => {
    for (const t of templates) {
      routes.push({ name, method, pattern: pathPattern(t), auth: true, handle, ...(body ? { body } : {}) });
    }
  };
  add(
    "transaction",
    "PUT",
    [`${V1}/transactions/{txnId}`, `/transactions/{txnId}`],
    (ctx, r) => q.transaction(ctx, r),
    "required",
  );
  add("query_user", "GET", [`${V1}/users/{userId+}`, `/users/{userId+}`], (ctx, r) => q.user(ctx, r));
  add("query_alias", "GET", [`${V1}/rooms/{alias+}`, `/rooms/{alias+}`], (ctx, r) => q.alias(ctx, r));
  add(
    "ping",
    "POST",
    [`${V1}/ping`, `${UNSTABLE}/fi.mau.msc2659/ping`],
    (ctx, r) => q.ping(ctx, r),
    "optional",
  );
  for (const prefix of [V1, UNSTABLE]) {
    add("thirdparty_protocol", "GET", [`${prefix}/thirdparty/protocol/{protocol}`], (ctx, r) =>
      q.protocol(ctx, r),
    );
    add("thirdparty_user", "GET", [`${prefix}/thirdparty/user/{protocol}`], (ctx, r) =>
      q.lookup(ctx, r, "user"),
    );
    add("thirdparty_location", "GET", [`${prefix}/thirdparty/location/{protocol}`], (ctx, r) =>
      q.lookup(ctx, r, "location"),
    );
    add("thirdparty_user_reverse", "GET", [`${prefix}/thirdparty/user`], (ctx, r) =>
      q.reverse(ctx, r, "user"),
    );
    add("thirdparty_location_reverse", "GET", [`${prefix}/thirdparty/location`], (ctx, r) =>
      q.reverse(ctx, r, "location"),
    );
    add("user_uri", "GET", [`${prefix}/user`], (ctx, r) => q.userUri(ctx, r));
    add("alias_uri", "GET", [`${prefix}/alias`], (ctx, r) => q.aliasUri(ctx, r));
  }
  return routes;
}

const ok = (ctx: Context, body: unknown = {}) => {
  ctx.status = 200;
  ctx.body = body;
};

/** The route handlers. Each query handler call is bounded by the handler timeout. */
class Queries {
  constructor(private readonly deps: RouteDeps) {}

  async transaction(ctx: Context, { params, body }: RouteRequest): Promise<void> {
    const txnId = params[0]!;
    const txn = parseTransactionBody(body);
    const { metrics, logger, processor } = this.deps;
    try {
      const { outcome, joined } = await processor.process(txnId, txn);
      metrics.countTransaction(joined ? "duplicate" : outcome);
      if (logger.isLevelEnabled("debug"))
        logger.debug(
          { transactionId: txnId, outcome, joined, events: txn.events.length },
          "transaction answered",
        );
    } catch (err) {
      const busy = err instanceof MatrixHttpError;
      metrics.countTransaction(busy ? "busy" : "failed");
      throw err;
    }
    ok(ctx);
  }

  async user(ctx: Context, { params }: RouteRequest): Promise<void> {
    const userId = params[0]!;
    const { matcher, handlers } = this.deps;
    if (!matcher.isUserInNamespace(userId)) throw notFound("that user is not in this bridge's namespace");
    const queryUser = handlers.queryUser?.bind(handlers);
    if (!queryUser || !(await this.call("queryUser", (c) => queryUser(userId, c)))) {
      throw notFound("no such user on the remote network");
    }
    ok(ctx);
  }

  async alias(ctx: Context, { params }: RouteRequest): Promise<void> {
    const alias = params[0]!;
    const { matcher, handlers } = this.deps;
    if (
      !alias.startsWith("#") ||
      serverName(alias) !== matcher.domain ||
      !matcher.isAliasInNamespace(alias)
    ) {
      throw notFound("that alias is not in this bridge's namespace");
    }
    const queryRoomAlias = handlers.queryRoomAlias?.bind(handlers);
    if (!queryRoomAlias || !(await this.call("queryRoomAlias", (c) => queryRoomAlias(alias, c)))) {
      throw notFound("no such room on the remote network");
    }
    ok(ctx);
  }

  async ping(ctx: Context, { body }: RouteRequest): Promise<void> {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badJson("the body must be a JSON object");
    }
    // Synapse sends `"transaction_id": null` when the bridge's own ping request carried none.
    const given = (body as Record<string, unknown>).transaction_id;
    if (given !== undefined && given !== null && typeof given !== "string") {
      throw badJson("transaction_id: must be a string or null");
    }
    const raw = given ?? undefined;
    this.deps.logger.info({ transactionId: raw }, "pinged by the homeserver");
    const onPing = this.deps.handlers.onPing?.bind(this.deps.handlers);
    if (onPing) await this.call("onPing", (c) => onPing(raw, c));
    ok(ctx);
  }

  async protocol(ctx: Context, { params }: RouteRequest): Promise<void> {
    const protocol = this.knownProtocol(params[0]!);
    const getProtocol = this.deps.handlers.thirdParty?.getProtocol?.bind(this.deps.handlers.thirdParty);
    const result = getProtocol ? await this.call("getProtocol", (c) => getProtocol(protocol, c)) : null;
    if (result === null || result === undefined) throw notFound("no description for that protocol");
    if (typeof result !== "object") throw this.handlerBug("getProtocol", "did not return an object");
    ok(ctx, result);
  }

  async lookup(ctx: Context, { params, query }: RouteRequest, kind: "user" | "location"): Promise<void> {
    const protocol = this.knownProtocol(params[0]!);
    const fields: Record<string, string> = {};
    for (const [key, value] of query) {
      if (key !== "access_token" && !(key in fields)) fields[key] = value;
    }
    const tp = this.deps.handlers.thirdParty;
    const lookup:
      ((p: string, f: Record<string, string>, c: HandlerContext) => Promise<unknown[]>) | undefined =
      kind === "user" ? tp?.lookupUser?.bind(tp) : tp?.lookupLocation?.bind(tp);
    const name = kind === "user" ? "lookupUser" : "lookupLocation";
    const result: unknown = lookup ? await this.call(name, (c) => lookup(protocol, fields, c)) : [];
    this.sendList(ctx, name, result);
  }

  async reverse(ctx: Context, { query }: RouteRequest, kind: "user" | "location"): Promise<void> {
    const param = kind === "user" ? "userid" : "alias";
    const id = query.get(param);
    if (id === null || id === "") throw invalidParam(`${param}: required query parameter`);
    const tp = this.deps.handlers.thirdParty;
    const lookup: ((id: string, c: HandlerContext) => Promise<unknown[]>) | undefined =
      kind === "user" ? tp?.reverseLookupUser?.bind(tp) : tp?.reverseLookupLocation?.bind(tp);
    const name = kind === "user" ? "reverseLookupUser" : "reverseLookupLocation";
    const result: unknown = lookup ? await this.call(name, (c) => lookup(id, c)) : [];
    this.sendList(ctx, name, result);
  }

  async userUri(ctx: Context, { query }: RouteRequest): Promise<void> {
    const uri = parseUriParam(query);
    const { handlers, matcher } = this.deps;
    const userFromUri = handlers.userFromUri?.bind(handlers);
    const userId = userFromUri ? await this.call("userFromUri", (c) => userFromUri(uri, c)) : null;
    if (userId === null || userId === undefined) throw notFound("no user for that URI");
    if (typeof userId !== "string" || !matcher.isUserInNamespace(userId)) {
      throw this.handlerBug("userFromUri", "returned a user id outside the users namespace");
    }
    ok(ctx, { user_id: userId });
  }

  async aliasUri(ctx: Context, { query }: RouteRequest): Promise<void> {
    const uri = parseUriParam(query);
    const { handlers, matcher } = this.deps;
    const aliasFromUri = handlers.aliasFromUri?.bind(handlers);
    const alias = aliasFromUri ? await this.call("aliasFromUri", (c) => aliasFromUri(uri, c)) : null;
    if (alias === null || alias === undefined) throw notFound("no alias for that URI");
    if (typeof alias !== "string" || !alias.startsWith("#") || !matcher.isAliasInNamespace(alias)) {
      throw this.handlerBug("aliasFromUri", "returned an alias outside the aliases namespace");
    }
    ok(ctx, { alias });
  }

  private knownProtocol(protocol: string): string {
    if (!(this.deps.registration.protocols ?? []).includes(protocol)) {
      throw notFound("unknown protocol");
    }
    return protocol;
  }

  private sendList(ctx: Context, name: string, result: unknown): void {
    if (!Array.isArray(result)) throw this.handlerBug(name, "did not return an array");
    if (result.length === 0) throw notFound("no results");
    ok(ctx, result);
  }

  /** Calls a query handler with the timeout; any failure becomes a generic 500 (logged). */
  private async call<T>(name: string, fn: (ctx: HandlerContext) => Promise<T>): Promise<T> {
    const { metrics, logger, handlerTimeoutMs } = this.deps;
    const stop = metrics.handlerSeconds.startTimer(name);
    try {
      return await withTimeout(
        name,
        handlerTimeoutMs,
        (signal) => {
          let log: Logger | undefined;
          return fn({
            get signal() {
              return signal();
            },
            get log() {
              return (log ??= logger.child({ handler: name }));
            },
          });
        },
        {
          onLateFailure: (err) =>
            logger.warn({ err, handler: name }, "query handler failed after its timeout"),
        },
      );
    } catch (err) {
      metrics.errors.inc({
        handler: name,
        reason: err instanceof Error && err.name === "HandlerTimeoutError" ? "timeout" : "error",
      });
      logger.error({ err, handler: name }, `${name} failed`);
      throw new MatrixHttpError(500, "M_UNKNOWN", "the bridge could not answer this query");
    } finally {
      stop();
    }
  }

  private handlerBug(name: string, what: string): MatrixHttpError {
    this.deps.metrics.errors.inc({ handler: name, reason: "error" });
    this.deps.logger.error({ handler: name }, `${name} ${what}`);
    return new MatrixHttpError(500, "M_UNKNOWN", "the bridge could not answer this query");
  }
}

function parseUriParam(query: URLSearchParams): URL {
  const raw = query.get("uri");
  if (raw === null || raw === "") throw invalidParam("uri: required query parameter");
  try {
    return new URL(raw);
  } catch {
    throw invalidParam("uri: not a valid URI");
  }
}
