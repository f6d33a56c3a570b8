/**
 * The ingest load generator, a child process of bench/run.ts: PUTs transactions to an
 * application service the way Synapse does (fresh txnId each, the hs_token as a Bearer
 * token, `inflight` transactions at a time over keep-alive connections) for `durationMs`,
 * and reports transactions, events and acknowledgement latencies. Any answer other than 200
 * is counted as an error and reported; the runner fails the run on errors.
 */
import { Agent, request } from "node:http";
import { percentileSorted } from "../lib/stats.js";
import { serve } from "../lib/rpc.js";
import { transactionBody } from "../lib/transactions.js";

export interface LoadArgs {
  url: string;
  hsToken: string;
  runId: string;
  batch: number;
  inflight: number;
  rooms: number;
  durationMs: number;
  /** Stop after this many transactions even if time is left (e.g. the memory benchmark). */
  maxTransactions?: number;
}

export interface LoadResult {
  transactions: number;
  events: number;
  errors: number;
  /** 503 answers (a full inbox) that were sent again. */
  backpressured: number;
  firstError?: string;
  elapsedMs: number;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

function put(agent: Agent, url: URL, path: string, token: string, body: string): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: "PUT",
        path,
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve([res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8")]));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function run(a: LoadArgs): Promise<LoadResult> {
  const url = new URL(a.url);
  const agent = new Agent({ keepAlive: true, maxSockets: a.inflight });
  const latencies: number[] = [];
  let seq = 0;
  let errors = 0;
  let backpressured = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + a.durationMs;
  const limit = a.maxTransactions ?? Number.POSITIVE_INFINITY;
  const worker = async () => {
    while (performance.now() < deadline && seq < limit) {
      const mine = seq++;
      const body = transactionBody(a.runId, mine, a.batch, a.rooms);
      const path = `/_matrix/app/v1/transactions/${encodeURIComponent(`${a.runId}-${mine}`)}`;
      const t0 = performance.now();
      try {
        for (;;) {
          const [status, text] = await put(agent, url, path, a.hsToken, body);
          if (status === 200) latencies.push(performance.now() - t0);
          else if (status === 503) {
            // A full inbox (bridgekit's backpressure): the homeserver keeps the transaction
            // and sends it again. Counted, and tried again at once-ish, so the run measures
            // what the bridge sustains; the wait shows in this transaction's latency.
            backpressured++;
            await new Promise((r) => setTimeout(r, 2));
            continue;
          } else {
            errors++;
            firstError ??= `HTTP ${status}: ${text.slice(0, 200)}`;
          }
          break;
        }
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: a.inflight }, worker));
  const elapsedMs = performance.now() - started;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const result: LoadResult = {
    transactions: latencies.length,
    events: latencies.length * a.batch,
    errors,
    backpressured,
    elapsedMs,
    eventsPerSec: (latencies.length * a.batch) / (elapsedMs / 1000),
    p50Ms: percentileSorted(sorted, 50),
    p99Ms: percentileSorted(sorted, 99),
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

serve({ run: (args: LoadArgs) => run(args) }, { pid: process.pid });
