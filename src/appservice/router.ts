import type Router from "@koa/router";
import type { Context, Middleware } from "koa";
import { invalidParam, MatrixHttpError } from "./errors.js";

export type Method = "GET" | "PUT" | "POST" | "DELETE";

/** What a route's handler is given. */
export interface RouteRequest {
  /** Path parameters, percent-decoded, in pattern order. */
  params: string[];
  /** The query string, parsed (includes access_token: never log or forward it whole). */
  query: URLSearchParams;
  /** The parsed JSON body, for routes that read one. */
  body: unknown;
}

export interface Route {
  /** A short stable name, used in metrics and logs. */
  name: string;
  method: Method;
  /** Matched against the raw (still percent-encoded) path; each group is one parameter. */
  pattern: RegExp;
  /** Whether the homeserver's token is required. */
  auth: boolean;
  /** Whether a JSON body is read: "required", "optional" (empty body reads as {}), or not at all. */
  body?: "required" | "optional";
  handle(ctx: Context, request: RouteRequest): Promise<void>;
}

/** The route matched for this request and its raw parameters, kept on ctx.state. */
export interface MatchedRoute {
  route: Route;
  rawParams: string[];
}

/**
 * Builds a pattern from a path template in which `{name}` is one segment and `{name+}` is the
 * rest of the path (it may contain unescaped slashes, as user ids can). Literal parts are
 * matched exactly. Nothing is decoded before matching, so `..%2F..` stays one opaque segment.
 */
export function pathPattern(template: string): RegExp {
  const source = template
    .split(/(\{[a-zA-Z]+\+?\})/)
    .map((part) => {
      if (/^\{[a-zA-Z]+\+\}$/.test(part)) return "(.+)";
      if (/^\{[a-zA-Z]+\}$/.test(part)) return "([^/]+)";
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("");
  return new RegExp(`^${source}$`);
}

/**
 * Registers routes on a @koa/router, each matched by its own pattern on the raw path (see
 * pathPattern) and by its method only: @koa/router also gives GET routes HEAD, which these
 * apps do not serve (it falls through to `unmatched()`, a 405). `run` handles a match, with
 * the route's raw (still percent-encoded) parameters.
 */
export function registerRoutes<R extends { method: Method; pattern: RegExp }>(
  router: Router,
  routes: readonly R[],
  run: (ctx: Context, route: R, rawParams: string[]) => Promise<void>,
): void {
  for (const route of routes) {
    router.register(
      route.pattern,
      [route.method],
      async (ctx, next) => {
        if (ctx.method !== route.method) {
          await next();
          return;
        }
        await run(ctx, route, ctx.captures ?? []);
      },
      { pathAsRegExp: true },
    );
  }
}

/**
 * Answers what no route took, after @koa/router: a known path with another method is 405
 * `M_UNRECOGNIZED` with `Allow` (the methods of the routes whose pattern matched; HEAD, which
 * the router adds to GET routes, is not served); anything else is 404 `M_UNRECOGNIZED`.
 */
export function unmatched(): Middleware {
  return (ctx) => {
    const layers = (ctx as Context & { matched?: Array<{ methods: string[] }> }).matched ?? [];
    const allowed = new Set(layers.flatMap((layer) => layer.methods).filter((m) => m !== "HEAD"));
    if (allowed.size > 0) {
      throw new MatrixHttpError(405, "M_UNRECOGNIZED", `method ${ctx.method} is not allowed on this path`, {
        Allow: [...allowed].join(", "),
      });
    }
    throw new MatrixHttpError(404, "M_UNRECOGNIZED", "unrecognized request");
  };
}

/** Percent-decodes path parameters; malformed encoding is 400 `M_INVALID_PARAM`. */
export function decodeParams(raw: readonly string[]): string[] {
  return raw.map((value, i) => {
    try {
      return decodeURIComponent(value);
    } catch {
      throw invalidParam(`path parameter ${i + 1} is not valid percent-encoding`);
    }
  });
}
