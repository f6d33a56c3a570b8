import type { KeyvStoreAdapter } from "keyv";

export interface RedisAdapterOptions {
  /** The connection URL, as given (with password). Never logged. */
  url: string;
  /** Bound on opening the connection, in ms. */
  connectTimeoutMs: number;
  /** Bound on one command, including time queued while reconnecting, in ms. */
  operationTimeoutMs: number;
  /** The connection's CLIENT SETNAME, shown by CLIENT LIST. */
  clientName: string;
  /** Called on connection errors after start-up (the client reconnects by itself). */
  onConnectionError: (err: Error) => void;
}

/**
 * A connected @keyv/redis adapter. @keyv/redis, given a URL, retries a refused connection
 * forever, so a wrong URL hangs instead of failing. Here the client is built and connected
 * first: at start-up a failed or slow connection rejects (bounded by connectTimeoutMs);
 * once it has been up, a lost connection is re-established in the background with backoff
 * (at most 2 s apart), and commands issued meanwhile wait for it, each bounded by
 * operationTimeoutMs, after which they reject.
 */
export async function createRedisAdapter(opts: RedisAdapterOptions): Promise<KeyvStoreAdapter> {
  const { default: KeyvRedis, createClient } = await import("@keyv/redis");
  let everReady = false;
  const client = createClient({
    url: opts.url,
    name: opts.clientName,
    socket: {
      connectTimeout: opts.connectTimeoutMs,
      reconnectStrategy: (retries: number, cause: Error) =>
        everReady ? Math.min(50 * 2 ** retries, 2_000) : cause,
    },
    commandOptions: { timeout: opts.operationTimeoutMs },
  });
  client.on("error", (err: Error) => {
    if (everReady) opts.onConnectionError(err);
  });
  client.on("ready", () => {
    everReady = true;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${opts.connectTimeoutMs} ms`)),
          opts.connectTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    if (client.isOpen) client.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return new KeyvRedis(client, {
    throwOnConnectError: true,
    throwOnErrors: true,
  });
}
