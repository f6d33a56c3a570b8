/**
 * An incremental reader of one HTTP/1.1 response (RFC 9112), for the media link route's own
 * download client (pooled-download.ts): it is fed the bytes of the connection as they arrive,
 * in pieces of any size, and reports the response's head once, then its body in slices, then
 * its end. Body slices are views into the bytes given to `push`, never copies: a caller that
 * reuses its read buffers must be done with a slice before that buffer is read into again.
 *
 * Body framing: none after a HEAD request and for 204/304; chunked when the last transfer
 * coding is chunked (chunk extensions and trailers read and dropped); else Content-Length;
 * else up to the connection's end. Interim 1xx heads are skipped (101 is refused). Lines end
 * in CRLF. Anything else is an HttpResponseError that says what was wrong; so is a connection
 * that ends before the response does.
 */

/** A response the reader cannot make sense of, or one cut short. */
export class HttpResponseError extends Error {
  override readonly name = "HttpResponseError";
}

export interface ResponseHead {
  status: number;
  /** Lower-cased names; repeated fields joined with ", ". */
  headers: Record<string, string>;
}

export interface ResponseReaderOptions {
  /** The head, once (after any 1xx). */
  onHead(head: ResponseHead): void;
  /** A piece of the body: a view into the bytes `push` was given, valid while they are. */
  onBody(slice: Buffer): void;
  /** The response is complete; nothing more will be reported. */
  onEnd(): void;
  /** The request was a HEAD: the response has no body whatever its headers say. */
  headRequest?: boolean;
  /** The largest head (status line and header fields) accepted; default 16 KiB. */
  maxHeadBytes?: number;
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
/** A chunk-size line (with its extensions) or a trailer line longer than this is refused. */
const MAX_LINE = 4096;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type State =
  | { kind: "head" }
  | { kind: "length"; left: number }
  | { kind: "until-close" }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; left: number }
  | { kind: "chunk-end" }
  | { kind: "trailers" }
  | { kind: "done" };

export class HttpResponseReader {
  private state: State = { kind: "head" };
  /** Bytes of a head or of a line that arrived in pieces (bounded: maxHeadBytes, MAX_LINE). */
  private partial: Buffer | undefined;
  private readonly maxHead: number;

  constructor(private readonly o: ResponseReaderOptions) {
    this.maxHead = o.maxHeadBytes ?? 16 * 1024;
  }

  /** True once the whole response was read. */
  get done(): boolean {
    return this.state.kind === "done";
  }

  /** True while the head has not been read entirely. */
  get inHead(): boolean {
    return this.state.kind === "head";
  }

  /**
   * Reads the next bytes of the connection. Throws HttpResponseError for a malformed
   * response, and for bytes after the response's end.
   */
  push(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      const s = this.state;
      switch (s.kind) {
        case "head":
          at = this.readHead(bytes, at);
          break;
        case "length":
        case "chunk-data": {
          // A counted run of body bytes: the whole body, or one chunk's data.
          const n = Math.min(s.left, bytes.length - at);
          this.o.onBody(bytes.subarray(at, at + n));
          at += n;
          s.left -= n;
          if (s.left > 0) break;
          if (s.kind === "length") this.finish();
          else this.state = { kind: "chunk-end" };
          break;
        }
        case "until-close":
          this.o.onBody(at === 0 ? bytes : bytes.subarray(at));
          at = bytes.length;
          break;
        case "chunk-size":
          at = this.readLine(bytes, at, "chunk size line", (line) => this.chunkSize(line));
          break;
        case "chunk-end":
          at = this.readLine(bytes, at, "end of a chunk", (line) => {
            if (line !== "")
              throw new HttpResponseError(`no CRLF after a chunk's data (got "${clip(line)}")`);
            this.state = { kind: "chunk-size" };
          });
          break;
        case "trailers":
          at = this.readLine(bytes, at, "trailer field", (line) => {
            if (line === "") this.finish();
          });
          break;
        case "done":
          throw new HttpResponseError(`${bytes.length - at} bytes after the end of the response`);
      }
    }
  }

  /**
   * The connection ended. Completes a body that runs to the connection's end; throws
   * HttpResponseError when the response was not complete.
   */
  end(): void {
    const s = this.state;
    if (s.kind === "done") return;
    if (s.kind === "until-close") return this.finish();
    if (s.kind === "head")
      throw new HttpResponseError("the connection closed before the response's head was complete");
    if (s.kind === "length")
      throw new HttpResponseError(`the connection closed with ${s.left} bytes of the body missing`);
    throw new HttpResponseError("the connection closed in the middle of a chunked body");
  }

  private finish(): void {
    this.state = { kind: "done" };
    this.partial = undefined;
    this.o.onEnd();
  }

  /** Reads head bytes from `at`; returns where it stopped. */
  private readHead(bytes: Buffer, at: number): number {
    const held = this.partial?.length ?? 0;
    // The head's end may straddle the previous piece and this one: search from 3 bytes back.
    const joined =
      held > 0 ? Buffer.concat([this.partial!, bytes.subarray(at, at + this.maxHead)]) : undefined;
    const view = joined ?? bytes.subarray(at);
    const end = view.indexOf(HEAD_END, Math.max(0, held - 3));
    if (end === -1) {
      if (view.length > this.maxHead)
        throw new HttpResponseError(`the response's head is larger than ${this.maxHead} bytes`);
      this.partial = Buffer.from(view); // a copy: the caller may reuse `bytes`
      return bytes.length;
    }
    if (end + 4 > this.maxHead)
      throw new HttpResponseError(`the response's head is larger than ${this.maxHead} bytes`);
    this.partial = undefined;
    const consumed = end + 4 - held;
    this.parseHead(view.toString("latin1", 0, end));
    return at + consumed;
  }

  private parseHead(text: string): void {
    const lines = text.split("\r\n");
    const statusLine = lines[0]!;
    const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(statusLine);
    if (!m) throw new HttpResponseError(`bad status line "${clip(statusLine)}"`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = colon > 0 ? line.slice(0, colon) : "";
      if (!TOKEN.test(name)) throw new HttpResponseError(`bad header line "${clip(line)}"`);
      const key = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    }
    if (status === 101)
      throw new HttpResponseError("the server switched protocols (101), which was not asked for");
    if (status < 200) return; // interim (100 Continue, 103 Early Hints): the real head follows
    this.state = this.bodyState(status, headers);
    this.o.onHead({ status, headers });
    if (this.state.kind === "done") this.o.onEnd();
  }

  private bodyState(status: number, headers: Record<string, string>): State {
    if (this.o.headRequest || status === 204 || status === 304) return { kind: "done" };
    const te = headers["transfer-encoding"];
    if (te !== undefined) {
      const last = te.split(",").at(-1)!.trim().toLowerCase();
      return last === "chunked" ? { kind: "chunk-size" } : { kind: "until-close" };
    }
    const cl = headers["content-length"];
    if (cl !== undefined) {
      const values = new Set(cl.split(",").map((v) => v.trim()));
      const [only] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(only!))
        throw new HttpResponseError(`bad Content-Length "${clip(cl)}"`);
      const left = Number(only);
      return left === 0 ? { kind: "done" } : { kind: "length", left };
    }
    return { kind: "until-close" };
  }

  private chunkSize(line: string): void {
    const m = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;.*)?$/.exec(line);
    if (!m) throw new HttpResponseError(`bad chunk size line "${clip(line)}"`);
    const size = parseInt(m[1]!, 16);
    this.state = size === 0 ? { kind: "trailers" } : { kind: "chunk-data", left: size };
  }

  /** Reads one CRLF-terminated line (of at most MAX_LINE bytes) and hands it to `take`. */
  private readLine(bytes: Buffer, at: number, what: string, take: (line: string) => void): number {
    const held = this.partial?.length ?? 0;
    // A CR at the end of the held bytes may pair with an LF at the start of these.
    if (held > 0 && this.partial![held - 1] === 0x0d && bytes[at] === 0x0a) {
      const line = this.partial!.subarray(0, held - 1);
      this.partial = undefined;
      take(line.toString("latin1"));
      return at + 1;
    }
    const eol = bytes.indexOf(CRLF, at);
    if (eol === -1) {
      if (held + bytes.length - at > MAX_LINE)
        throw new HttpResponseError(`a ${what} longer than ${MAX_LINE} bytes`);
      this.partial = Buffer.concat([this.partial ?? Buffer.alloc(0), bytes.subarray(at)]);
      return bytes.length;
    }
    const own = bytes.subarray(at, eol);
    const line = held > 0 ? Buffer.concat([this.partial!, own]) : own;
    this.partial = undefined;
    if (line.length > MAX_LINE) throw new HttpResponseError(`a ${what} longer than ${MAX_LINE} bytes`);
    take(line.toString("latin1"));
    return eol + 2;
  }
}

/** A piece of a bad line for an error message: at most 80 characters, control bytes shown. */
function clip(text: string): string {
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
  return shown.slice(1, -1);
}
