/**
 * The smallest application service a homeserver can push to, for end-to-end tests of the
 * client side: node:http on 127.0.0.1 (random port) that checks `Authorization: Bearer
 * <hs_token>`, records every pushed event and answers `{}`. User and room queries answer 404
 * (nothing is created on demand). Start it before Synapse: the registration's `url` is its url.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { MatrixEvent } from "../../../src/matrix/events.js";

export interface AppserviceStub {
  readonly url: string;
  /** Every event pushed in a transaction, in arrival order (a replayed txnId is not recorded twice). */
  readonly events: MatrixEvent[];
  /** Resolves with the first pushed event matching `predicate` (already received or arriving later). */
  waitForEvent(predicate: (e: MatrixEvent) => boolean, timeoutMs?: number): Promise<MatrixEvent>;
  close(): Promise<void>;
}

const MAX_BODY = 10 * 1024 * 1024;

export async function startAppserviceStub(hsToken: string): Promise<AppserviceStub> {
  const events: MatrixEvent[] = [];
  const seenTxns = new Set<string>();
  const waiters: Array<{ predicate: (e: MatrixEvent) => boolean; resolve: (e: MatrixEvent) => void }> = [];

  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${hsToken}`) {
      reply(req.headers.authorization === undefined ? 401 : 403, {
        errcode: "M_FORBIDDEN",
        error: "bad hs_token",
      });
      return;
    }
    readJson(req).then(
      (body) => {
        const path = new URL(req.url ?? "/", "http://x").pathname;
        const txn = /^\/_matrix\/app\/v1\/transactions\/([^/]+)$/.exec(path);
        if (req.method === "PUT" && txn) {
          if (!seenTxns.has(txn[1]!)) {
            seenTxns.add(txn[1]!);
            for (const event of (body as { events?: MatrixEvent[] }).events ?? []) {
              events.push(event);
              for (let i = waiters.length - 1; i >= 0; i--) {
                if (waiters[i]!.predicate(event)) waiters.splice(i, 1)[0]!.resolve(event);
              }
            }
          }
          reply(200, {});
        } else if (req.method === "POST" && path === "/_matrix/app/v1/ping") {
          reply(200, {});
        } else {
          reply(404, { errcode: "M_NOT_FOUND", error: "appservice stub knows nothing" });
        }
      },
      (err: Error) => reply(400, { errcode: "M_NOT_JSON", error: err.message }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    events,
    waitForEvent(predicate, timeoutMs = 30_000) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (e: MatrixEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching event pushed within ${timeoutMs} ms (${events.length} events seen)`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  return text === "" ? {} : JSON.parse(text);
}
