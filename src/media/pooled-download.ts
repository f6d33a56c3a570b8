/**
 * One HTTP/1.1 GET (`Connection: close`) whose body is read into a small pool of reused
 * buffers instead of a fresh buffer per socket read, for streaming large files through the
 * bridge at a fixed memory cost (the media link route). Node's HTTP client allocates a new
 * buffer of up to 64 KiB for each read; they live outside V8's heap until its next garbage
 * collection, which an idle heap may not run for tens of MiB, and the allocator keeps the
 * pages: the process's RSS grows with the download's speed. Here the socket reads (net/tls
 * `onread`) into a few buffers (POOL: at most 256 KiB per download): a buffer is read into
 * again only once every write of its bytes has completed, and reading pauses while too few
 * are free. A read that still finds none free (TLS handing over more records after a pause
 * than the reserve holds) gets a buffer of its own, dropped once written. Buffers a download
 * is done with are kept for the next ones (at most IDLE_BYTES of each size), so a stream of
 * small downloads does not allocate either. The response is parsed by http-response-reader.ts.
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { HttpResponseError, HttpResponseReader, type ResponseHead } from "./http-response-reader.js";

/**
 * The read buffers of a download: how large, how many, and how many must stay free for
 * reading to go on. Plain TCP reads up to 64 KiB at a time and stops at once when paused.
 * TLS hands over one record (at most 16 KiB) per read, and after a pause still the records it
 * already decrypted, a few: more, smaller buffers, and a reserve that takes those reads.
 */
const POOL = {
  tcp: { bytes: 64 * 1024, count: 4, reserve: 1 },
  tls: { bytes: 16 * 1024, count: 16, reserve: 6 },
} as const;

/** Read buffers no download holds now, by size, for the next downloads (at most IDLE_BYTES each). */
const idle = new Map<number, Buffer[]>();
const IDLE_BYTES = 512 * 1024;
/** What the socket is given to read into once a download is over (no read comes then). */
const AFTER_THE_END = new Uint8Array(1);

function takeIdle(size: number): Buffer {
  return idle.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

function keepIdle(buf: Buffer): void {
  const list = idle.get(buf.length) ?? [];
  if ((list.length + 1) * buf.length > IDLE_BYTES) return;
  list.push(buf);
  idle.set(buf.length, list);
}

/** Where body bytes go: a Node Writable (an http.ServerResponse, say) fits. */
export interface BodyTarget {
  /** Takes a view into a read buffer; `done` once it is no longer referenced (written out). */
  write(chunk: Buffer, done: (err?: Error | null) => void): unknown;
}

export interface PooledResponse extends ResponseHead {
  /**
   * Writes the body to `target`, each slice once the previous writes left its buffer free,
   * and resolves once every write completed and the response was read to its end; rejects
   * (and closes the connection) when the response is cut short or malformed, or a write
   * fails. Call it once, or `text`, or `close`.
   */
  pipeTo(target: BodyTarget): Promise<void>;
  /** The body as text, for a small error answer: at most `max` bytes, then the connection is closed. */
  text(max: number): Promise<string>;
  /** Closes the connection (the rest of the body is not read). */
  close(): void;
}

export interface PooledGetOptions {
  /** Request headers (besides Host and Connection); values must not contain control characters. */
  headers?: Record<string, string>;
  /** Aborts the connection (before or after the head). */
  signal?: AbortSignal;
  /** Certificate authorities to trust for https, instead of Node's (for a private homeserver CA, and tests). */
  ca?: ConnectionOptions["ca"];
}

/** Performs a GET of an http(s) URL; resolves with the response's head, its body still to read. */
export function pooledGet(url: URL, opts: PooledGetOptions = {}): Promise<PooledResponse> {
  return new Promise((resolve, reject) => new PooledDownload(url, opts, resolve, reject).start());
}

/** A buffer the socket reads into, and how many slices of it are not written out yet. */
interface ReadBuffer {
  bytes: Buffer;
  pending: number;
  /** False for a buffer made for one read when the pool had none free (TLS only): not kept. */
  pooled: boolean;
}

/** A body slice read before pipeTo or text was called, and the buffer it is in. */
type Queued = { slice: Buffer; from: ReadBuffer };

class PooledDownload {
  private readonly pool: (typeof POOL)["tcp" | "tls"];
  /** Pooled buffers this download holds, free or not; at most pool.count. */
  private held = 0;
  /** Held buffers with nothing pending. */
  private free: ReadBuffer[] = [];
  /** The buffer the socket's next read goes into (taken out of `free`). */
  private next: ReadBuffer;
  /** The download is over (read to its end, failed or closed): its buffers go back to `idle`. */
  private over = false;
  private paused = false;
  private socket: Socket | undefined;
  private readonly reader: HttpResponseReader;
  /** The buffer of the read being parsed. */
  private reading: ReadBuffer | undefined;
  /** Body slices read before a sink was given. */
  private readonly queued: Queued[] = [];
  /** Body slices handed over (queued or written) whose write has not completed. */
  private writing = 0;
  private sink: BodyTarget | undefined;
  private ended = false;
  private failed: Error | undefined;
  private settleHead: ((head: ResponseHead) => void) | undefined;
  private settleBody: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly url: URL,
    private readonly opts: PooledGetOptions,
    private readonly resolve: (r: PooledResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.pool = url.protocol === "https:" ? POOL.tls : POOL.tcp;
    this.next = this.take();
    this.reader = new HttpResponseReader({
      onHead: (head) => this.settleHead?.(head),
      onBody: (slice) => this.body(slice),
      onEnd: () => {
        this.ended = true;
        this.maybeFinish();
      },
    });
  }

  start(): void {
    const { url, opts } = this;
    if (url.protocol !== "http:" && url.protocol !== "https:")
      return this.reject(new TypeError(`pooledGet wants an http(s) URL, got ${url.href}`));
    let request: string;
    try {
      request = requestText(url, opts.headers ?? {});
    } catch (err) {
      return this.reject(err as Error);
    }
    if (opts.signal?.aborted) return this.reject(abortError(opts.signal));
    this.settleHead = (head) => {
      this.settleHead = undefined;
      this.resolve(this.response(head));
    };
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const tls = url.protocol === "https:";
    const port = Number(url.port || (tls ? 443 : 80));
    // Node calls `buffer` once at the start and once after each callback: the next read's buffer.
    const onread: OnReadOpts = {
      buffer: () => (this.over ? AFTER_THE_END : this.next.bytes),
      callback: (nread) => this.onRead(nread),
    };
    // tls.connect takes `onread` too (Node >= 12.18), though @types/node does not say so.
    const tlsOptions: ConnectionOptions & { onread: OnReadOpts } = {
      host,
      port,
      onread,
      ...(isIP(host) ? {} : { servername: host }),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    };
    const socket = tls ? tlsConnect(tlsOptions) : netConnect({ host, port, onread });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on(tls ? "secureConnect" : "connect", () => socket.write(request));
    socket.on("error", (err: Error) => this.fail(err));
    // Without a 'data' listener a socket in onread mode still reports its end.
    socket.on("end", () => {
      if (this.failed) return;
      try {
        this.reader.end();
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on("close", () => {
      if (!this.reader.done)
        this.fail(new HttpResponseError("the connection closed before the response was complete"));
    });
    opts.signal?.addEventListener("abort", () => this.fail(abortError(opts.signal!)), { once: true });
  }

  /** A read of `nread` bytes into `this.next`; false pauses reading. */
  private onRead(nread: number): boolean {
    if (this.over) return false;
    const buf = this.next;
    this.next = this.take();
    this.reading = buf;
    try {
      this.reader.push(buf.bytes.subarray(0, nread));
    } catch (err) {
      this.fail(err as Error);
      return false;
    } finally {
      this.reading = undefined;
    }
    this.release(buf, 0);
    // With fewer than the reserve free, wait for writes to complete.
    this.paused = this.available() < this.pool.reserve;
    return !this.paused;
  }

  /** A free buffer: one held, else a new one from `idle`, else (too many held) one for this read only. */
  private take(): ReadBuffer {
    const free = this.free.pop();
    if (free) return free;
    const pooled = this.held < this.pool.count;
    if (pooled) this.held++;
    const bytes = pooled ? takeIdle(this.pool.bytes) : Buffer.allocUnsafeSlow(this.pool.bytes);
    return { bytes, pending: 0, pooled };
  }

  /** How many more reads there is room for. */
  private available(): number {
    return this.free.length + this.pool.count - this.held;
  }

  private body(slice: Buffer): void {
    const from = this.reading!;
    from.pending++;
    this.writing++;
    if (this.sink) this.write(slice, from);
    else this.queued.push({ slice, from });
  }

  private write(slice: Buffer, from: ReadBuffer): void {
    this.sink!.write(slice, (err) => {
      if (err) return this.fail(err);
      this.writing--;
      this.release(from, 1);
      if (this.paused && this.available() >= this.pool.reserve) {
        this.paused = false;
        this.socket?.resume();
      }
      this.maybeFinish();
    });
  }

  /**
   * `written` more slices of `buf` are written out; a pooled buffer with none pending is free
   * again once the read into it has been parsed (back to `idle` when the download is over).
   */
  private release(buf: ReadBuffer, written: number): void {
    buf.pending -= written;
    if (buf.pending > 0 || !buf.pooled || buf === this.reading || this.free.includes(buf)) return;
    if (this.over) {
      this.held--;
      keepIdle(buf.bytes);
    } else this.free.push(buf);
  }

  /** The download is over and its socket closed: free buffers go back to `idle`, the others once written. */
  private end(): void {
    if (this.over) return;
    this.over = true;
    this.socket?.destroy();
    // Slices read but never handed to a sink (a HEAD, an error answer): nothing holds them.
    for (const q of this.queued.splice(0)) {
      this.writing--;
      this.release(q.from, 1);
    }
    const next = this.next;
    for (const buf of this.free.splice(0)) this.release(buf, 0);
    this.release(next, 0);
  }

  private maybeFinish(): void {
    if (!this.ended || !this.settleBody || this.writing > 0) return;
    const { resolve } = this.settleBody;
    this.settleBody = undefined;
    this.end();
    resolve();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.end();
    if (this.settleHead) {
      this.settleHead = undefined;
      this.reject(err);
    }
    const body = this.settleBody;
    this.settleBody = undefined;
    body?.reject(err);
  }

  private response(head: ResponseHead): PooledResponse {
    const consume = (target: BodyTarget) => {
      if (this.sink || this.settleBody)
        return Promise.reject(new Error("the body of this response is already being read"));
      return new Promise<void>((resolve, reject) => {
        if (this.failed) return reject(this.failed);
        this.settleBody = { resolve, reject };
        this.sink = target;
        for (const q of this.queued.splice(0)) this.write(q.slice, q.from);
        this.maybeFinish();
      });
    };
    return {
      ...head,
      pipeTo: consume,
      text: async (max) => {
        const parts: Buffer[] = [];
        let size = 0;
        const full = new Error("enough");
        try {
          await consume({
            write: (chunk, done) => {
              parts.push(Buffer.from(chunk.subarray(0, max - size)));
              size += Math.min(chunk.length, max - size);
              done(size >= max ? full : null);
            },
          });
        } catch (err) {
          if (err !== full) throw err;
        }
        this.socket?.destroy();
        return Buffer.concat(parts).toString("utf8");
      },
      close: () => this.fail(new Error("the download was closed before its end")),
    };
  }
}

/** The request's bytes; a TypeError names a header whose name or value could split the request. */
function requestText(url: URL, headers: Record<string, string>): string {
  let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new TypeError(`bad request header name ${JSON.stringify(name)}`);
    if ([...value].some((c) => (c < " " && c !== "\t") || c === "\x7f"))
      throw new TypeError(`the request header ${name} holds a control character`);
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}
