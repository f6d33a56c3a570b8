/**
 * A plain IRC client over a raw socket, playing the remote user in tests. It keeps every line
 * it receives as raw bytes too, so tests can check line lengths and UTF-8 exactly.
 */
import { connect, type Socket } from "node:net";
import { EventEmitter, once } from "node:events";

export interface IrcLine {
  /** The line as received, without CRLF. */
  raw: Buffer;
  nick: string;
  command: string;
  params: string[];
}

export function parseLine(raw: Buffer): IrcLine {
  let text = raw.toString("utf8");
  let nick = "";
  if (text.startsWith("@")) text = text.slice(text.indexOf(" ") + 1);
  if (text.startsWith(":")) {
    const space = text.indexOf(" ");
    const prefix = text.slice(1, space);
    nick = prefix.split("!")[0] ?? "";
    text = text.slice(space + 1);
  }
  const params: string[] = [];
  let command = "";
  while (text.length > 0) {
    if (text.startsWith(":") && command !== "") {
      params.push(text.slice(1));
      break;
    }
    const space = text.indexOf(" ");
    const word = space < 0 ? text : text.slice(0, space);
    text = space < 0 ? "" : text.slice(space + 1);
    if (command === "") command = word.toUpperCase();
    else params.push(word);
  }
  return { raw, nick, command, params };
}

export class RawIrcClient {
  readonly lines: IrcLine[] = [];
  private readonly events = new EventEmitter();
  private buffer = Buffer.alloc(0);

  private constructor(
    private readonly socket: Socket,
    public nick: string,
  ) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      for (;;) {
        const end = this.buffer.indexOf("\r\n");
        if (end < 0) break;
        const raw = this.buffer.subarray(0, end);
        this.buffer = this.buffer.subarray(end + 2);
        const line = parseLine(raw);
        if (line.command === "PING") this.send(`PONG :${line.params[0] ?? ""}`);
        this.lines.push(line);
        this.events.emit("line", line);
      }
    });
    socket.on("error", () => {});
  }

  /** Connects and registers as `nick`; resolves after the welcome (001). */
  static async connect(port: number, nick: string): Promise<RawIrcClient> {
    const socket = connect({ host: "127.0.0.1", port });
    await once(socket, "connect");
    const client = new RawIrcClient(socket, nick);
    client.send(`NICK ${nick}`);
    client.send(`USER ${nick.toLowerCase().slice(0, 9)} 0 * :${nick} test user`);
    await client.waitFor((l) => l.command === "001");
    return client;
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Joins and waits for the end of the member list. */
  async join(channel: string): Promise<void> {
    this.send(`JOIN ${channel}`);
    await this.waitFor((l) => l.command === "366" && l.params[1]?.toLowerCase() === channel.toLowerCase());
  }

  /** The first line (already received or future) matching `predicate`. */
  async waitFor(predicate: (line: IrcLine) => boolean, timeoutMs = 10_000): Promise<IrcLine> {
    const found = this.lines.find(predicate);
    if (found) return found;
    return new Promise((resolve, reject) => {
      const onLine = (line: IrcLine) => {
        if (!predicate(line)) return;
        clearTimeout(timer);
        this.events.off("line", onLine);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.events.off("line", onLine);
        const seen = this.lines
          .slice(-15)
          .map((l) => l.raw.toString("utf8"))
          .join("\n  ");
        reject(
          new Error(`${this.nick}: no matching IRC line within ${timeoutMs} ms; last lines:\n  ${seen}`),
        );
      }, timeoutMs);
      this.events.on("line", onLine);
    });
  }

  /** Waits until `count` lines match `predicate` and returns them in order. */
  async waitForCount(
    predicate: (line: IrcLine) => boolean,
    count: number,
    timeoutMs = 10_000,
  ): Promise<IrcLine[]> {
    await this.waitFor(() => this.lines.filter(predicate).length >= count, timeoutMs);
    return this.lines.filter(predicate);
  }

  async quit(message = "bye"): Promise<void> {
    this.send(`QUIT :${message}`);
    this.socket.end();
    if (!this.socket.closed) await once(this.socket, "close");
  }

  destroy(): void {
    this.socket.destroy();
  }
}
