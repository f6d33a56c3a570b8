/**
 * A TCP proxy in front of a server, to make it really go away: `down()` closes the
 * listening port and resets every connection (clients get ECONNRESET, then ECONNREFUSED);
 * `up()` listens on the same port again. With `dropResponses` on, a request still reaches
 * the server but the connection is reset the moment the server answers: the server did the
 * work and the client never hears of it (the case idempotency exists for).
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export class TcpProxy {
  dropResponses = false;
  /** Connections accepted, and how many answers were dropped. */
  connections = 0;
  dropped = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly targetPort: number,
    public port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, 0);
    await proxy.up();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  /** Listens (again) on the proxy's port. */
  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    this.port = address.port;
    this.server = server;
  }

  /** Stops listening and resets every open connection. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    await closed;
  }

  private pipe(client: Socket): void {
    this.connections++;
    const upstream = connect(this.targetPort, "127.0.0.1");
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = () => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    upstream.on("data", (chunk: Buffer) => {
      if (this.dropResponses) {
        this.dropped++;
        this.sockets.delete(client);
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  }
}
