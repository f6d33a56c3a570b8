import type { DeadLetters } from "../inbox/dead-letters.js";
import { notFound } from "./errors.js";
import { pathPattern, type Route } from "./router.js";
import type { TransactionProcessor } from "./transaction-processor.js";

/** Where `bridgekit dead-letters` reaches a running bridge (with the hs_token). */
export const DEAD_LETTERS_PATH = "/_bridgekit/v1/dead-letters";

/**
 * The running bridge's dead letters, for `bridgekit dead-letters`: list them, send one
 * through its room again, drop one. Authenticated like the homeserver's requests (the
 * registration's hs_token), so only someone holding the registration file can use them.
 */
export function deadLetterRoutes(letters: DeadLetters, processor: TransactionProcessor): Route[] {
  const route = (
    name: string,
    method: Route["method"],
    template: string,
    handle: Route["handle"],
  ): Route => ({
    name,
    method,
    pattern: pathPattern(template),
    auth: true,
    handle,
  });
  return [
    route("dead_letters_list", "GET", DEAD_LETTERS_PATH, async (ctx) => {
      ctx.body = { dead_letters: await letters.list() };
    }),
    route("dead_letters_retry", "POST", `${DEAD_LETTERS_PATH}/{id}/retry`, async (ctx, { params }) => {
      if (!(await processor.retryDeadLetter(params[0]!))) throw notFound("no dead letter with that id");
      ctx.body = { retrying: true };
    }),
    route("dead_letters_drop", "DELETE", `${DEAD_LETTERS_PATH}/{id}`, async (ctx, { params }) => {
      if (!(await letters.remove(params[0]!))) throw notFound("no dead letter with that id");
      ctx.body = { dropped: true };
    }),
  ];
}
