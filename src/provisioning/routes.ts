/**
 * The provisioning API of mautrix-go's bridgev2 (its paths, JSON shapes, errcodes and auth),
 * served under `/_matrix/provision/v3` on the bridge's own listener, so that bridge managers
 * written for mautrix bridges drive this one too. The bridge side is a ProvisioningService.
 *
 * Order, as in bridgev2: CORS (preflights answered without auth) -> auth (see auth.ts) ->
 * route -> 404/405 `M_UNRECOGNIZED` for the rest. Every error is `{errcode, error}` JSON.
 */
import Router from "@koa/router";
import type { Context, Middleware } from "koa";
import type { LoginInput } from "../adapter/adapter.js";
import { parseJsonBody, readRawBody } from "../appservice/body.js";
import { badJson, MatrixHttpError } from "../appservice/errors.js";
import { decodeParams, pathPattern, registerRoutes, unmatched } from "../appservice/router.js";
import type { Logger } from "../common/logger.js";
import { describeValue } from "../common/validation-error.js";
import { ProvisioningAuth } from "./auth.js";
import { httpErrorFor, loginAlreadyFinished } from "./errors.js";
import { flowJson, resolvedJson, stepJson, whoamiJson } from "./json-shapes.js";
import type { ProvisioningCaller, ProvisioningService } from "./service.js";

export const PROVISIONING_PREFIX = "/_matrix/provision";
const V3 = `${PROVISIONING_PREFIX}/v3`;

/** The shortest shared secret accepted (as bridgev2: a shorter one leaves the API off). */
export const MIN_SHARED_SECRET_LENGTH = 16;

export interface ProvisioningOptions {
  service: ProvisioningService;
  /** Config `provisioning.sharedSecret`, 16 characters or more. */
  sharedSecret: string;
  /** The homeserver's client-server URL: where Matrix access tokens and OpenID tokens are checked. */
  homeserverUrl: string;
  /** For the token checks (default: the global fetch). */
  fetch?: typeof globalThis.fetch;
  log: Logger;
  /** The largest request body accepted, in bytes. */
  bodyLimitBytes: number;
  /** Positive token checks remembered: for `ttlMs` (default 5 minutes), `max` tokens (default 1000). */
  authCache?: { ttlMs?: number; max?: number };
  /** How long a token check with the homeserver may take (default 10 000 ms). */
  homeserverTimeoutMs?: number;
}

/** bridgev2's CORS headers (go.mau.fi/util/exhttp), on every answer under the prefix. */
const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
  "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
  "Access-Control-Max-Age": "86400",
};

interface ProvisioningRequest {
  caller: ProvisioningCaller;
  /** Path parameters, percent-decoded. */
  params: string[];
  query: URLSearchParams;
  ctx: Context;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

interface ProvisioningRoute {
  method: "GET" | "POST";
  pattern: RegExp;
  handle(request: ProvisioningRequest): Promise<Answer>;
}

const ok = (body: Record<string, unknown> = {}): Answer => ({ status: 200, body });

/**
 * Koa middleware answering everything under `/_matrix/provision` and passing every other
 * request on. Throws (a RangeError) for a shared secret shorter than 16 characters: without a
 * good one the API stays off, i.e. do not mount it.
 */
export function createProvisioning(options: ProvisioningOptions): Middleware {
  if (typeof options.sharedSecret !== "string" || options.sharedSecret.length < MIN_SHARED_SECRET_LENGTH) {
    throw new RangeError(
      `createProvisioning: the shared secret must be at least ${MIN_SHARED_SECRET_LENGTH} characters`,
    );
  }
  positive("bodyLimitBytes", options.bodyLimitBytes);
  const { service, log } = options;
  const auth = new ProvisioningAuth({
    sharedSecret: options.sharedSecret,
    homeserverUrl: options.homeserverUrl,
    permission: (userId) => service.permission(userId),
    fetch: options.fetch ?? globalThis.fetch,
    log,
    // lru-cache wants whole numbers.
    cacheTtlMs: Math.ceil(positive("authCache.ttlMs", options.authCache?.ttlMs ?? 5 * 60_000)),
    cacheMax: Math.ceil(positive("authCache.max", options.authCache?.max ?? 1000)),
    timeoutMs: positive("homeserverTimeoutMs", options.homeserverTimeoutMs ?? 10_000),
  });

  const router = new Router();
  registerRoutes(router, provisioningRoutes(service, options.bodyLimitBytes), async (ctx, route, raw) => {
    const answer = await route.handle({
      caller: ctx.state.provisioningCaller as ProvisioningCaller,
      params: decodeParams(raw),
      query: new URLSearchParams(ctx.querystring),
      ctx,
    });
    ctx.status = answer.status;
    ctx.body = answer.body;
  });
  const routes = router.routes() as unknown as Middleware;
  const rest = unmatched();

  return async (ctx, next) => {
    if (ctx.path !== PROVISIONING_PREFIX && !ctx.path.startsWith(`${PROVISIONING_PREFIX}/`)) {
      await next();
      return;
    }
    ctx.set(CORS_HEADERS);
    if (ctx.method === "OPTIONS") {
      ctx.status = 204;
      return;
    }
    try {
      ctx.state.provisioningCaller = await auth.authenticate(ctx.get("Authorization"), ctx.querystring);
      await routes(ctx, async () => {
        await rest(ctx, () => Promise.resolve());
      });
    } catch (err) {
      const answer = httpErrorFor(err);
      if (answer) {
        ctx.status = answer.status;
        ctx.set(answer.headers);
        ctx.body = answer.toJSON();
      } else {
        log.error({ err, method: ctx.method, path: ctx.path }, "provisioning request failed");
        ctx.status = 500;
        ctx.body = { errcode: "M_UNKNOWN", error: "internal error; the bridge's log says more" };
      }
    }
  };
}

/** Every path of the table in bridgev2's provisioning.yaml that this bridge serves. */
function provisioningRoutes(service: ProvisioningService, bodyLimit: number): ProvisioningRoute[] {
  const route = (
    method: ProvisioningRoute["method"],
    template: string,
    handle: ProvisioningRoute["handle"],
  ): ProvisioningRoute => ({ method, pattern: pathPattern(`${V3}${template}`), handle });
  const resolve = async ({ caller, params, query }: ProvisioningRequest, createDM: boolean) => {
    const loginId = query.get("login_id");
    const found = await service.resolveIdentifier(caller, params[0]!, {
      createDM,
      ...(loginId ? { loginId } : {}),
    });
    return { status: createDM && found.justCreated ? 201 : 200, body: resolvedJson(found) };
  };
  return [
    route("GET", "/whoami", async ({ caller }) => {
      const [managementRoom, logins] = await Promise.all([
        service.managementRoom(caller),
        service.logins(caller),
      ]);
      return ok(whoamiJson({ bridge: service.bridgeInfo(), flows: service.flows(), managementRoom, logins }));
    }),
    route("GET", "/login/flows", () => Promise.resolve(ok({ flows: service.flows().map(flowJson) }))),
    route("POST", "/login/start/{flowId}", async ({ caller, params }) =>
      ok(stepJson(await service.startLogin(caller, params[0]!))),
    ),
    route("POST", "/login/step/{processId}/{stepId}/{stepType}", async ({ caller, params, ctx }) => {
      const [processId, stepId, stepType] = params as [string, string, string];
      const input = await stepInput(stepType, ctx, bodyLimit);
      return ok(stepJson(await service.submitLogin(caller, processId, stepId, input)));
    }),
    route("POST", "/login/cancel/{processId}", async ({ caller, params }) => {
      await service.cancelLogin(caller, params[0]!);
      return ok();
    }),
    route("POST", "/logout/{loginId}", async ({ caller, params }) => {
      await service.logout(caller, params[0]!);
      return ok();
    }),
    route("GET", "/logins", async ({ caller }) =>
      ok({ login_ids: (await service.logins(caller)).map((login) => login.id) }),
    ),
    route("GET", "/resolve_identifier/{identifier}", (request) => resolve(request, false)),
    route("POST", "/create_dm/{identifier}", (request) => resolve(request, true)),
  ];
}

/**
 * What a step submission carries, by the step type in its path: `user_input` and `cookies`
 * read a JSON object of field id -> string; `display_and_wait` reads nothing; `complete` is
 * over already (410, as bridgev2); anything else is 404 M_UNRECOGNIZED.
 */
async function stepInput(stepType: string, ctx: Context, bodyLimit: number): Promise<LoginInput> {
  switch (stepType) {
    case "user_input":
    case "cookies":
      return { type: stepType, values: stringValues(parseJsonBody(await readRawBody(ctx.req, bodyLimit))) };
    case "display_and_wait":
      return { type: "display_and_wait" };
    case "complete":
      throw loginAlreadyFinished();
    default:
      throw new MatrixHttpError(404, "M_UNRECOGNIZED", `Invalid step type ${describeValue(stepType)}`);
  }
}

/** A JSON object whose values are all strings, copied; 400 M_BAD_JSON naming the first bad field. */
function stringValues(body: unknown): Record<string, string> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badJson(`the body must be a JSON object of field id -> string, not ${describeValue(body)}`);
  }
  const entries = Object.entries(body);
  for (const [key, value] of entries) {
    if (typeof value !== "string") {
      // The value itself is never echoed: it may be a password.
      throw badJson(`field ${describeValue(key)} must be a string, not ${jsonType(value)}`);
    }
  }
  return Object.fromEntries(entries);
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`createProvisioning: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}
