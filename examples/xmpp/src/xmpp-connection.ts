/**
 * One XMPP client session for the bridge, over @xmpp/client: log in (refusing an unencrypted
 * connection unless allowed), stay connected (reconnect with exponential backoff), and hand
 * every incoming stanza to the adapter. The password never appears in logs or errors.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { client, xml, type Authenticate, type Client, type Element, type JID } from "@xmpp/client";
import type { Logger } from "matrix-bridgekit";

export interface XmppConnectionOptions {
  /** `xmpp://host:port` or `xmpps://host:port`. */
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  /** Log in even when the connection is not encrypted. */
  allowInsecure: boolean;
  /** Bound on start() and on each iq request. */
  timeoutMs: number;
  reconnectDelayMs: number;
  reconnectMaxDelayMs: number;
  log: Logger;
}

interface ConnectionEvents {
  /** Every stanza the server sends (iq results are also routed to request()). */
  stanza: [Element];
  /** The session is online: after start(), and after each reconnect (`reconnected` true). */
  online: [{ reconnected: boolean }];
  /** The connection dropped; a reconnect is scheduled unless stop() was called. */
  disconnected: [];
}

/** Raised when the session cannot be used now (not yet online, reconnecting, or stopped). */
export class NotConnectedError extends Error {
  override readonly name = "NotConnectedError";
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class XmppConnection extends EventEmitter<ConnectionEvents> {
  private readonly xmpp: Client;
  private started = false;
  private stopped = false;
  private everOnline = false;
  /** Set when we refused to authenticate, so start() can report why. */
  private refusal: Error | null = null;

  constructor(private readonly opts: XmppConnectionOptions) {
    super();
    const userAgent = xml(
      "user-agent",
      { id: randomUUID() },
      xml("software", {}, "matrix-bridgekit XMPP bridge"),
    );
    this.xmpp = client({
      service: opts.service,
      domain: opts.domain,
      resource: opts.resource,
      timeout: Math.min(opts.timeoutMs, 10_000),
      credentials: (authenticate, mechanisms, _fast, entity) =>
        this.authenticate(authenticate, mechanisms, entity, userAgent),
    });
    this.xmpp.reconnect.delay = opts.reconnectDelayMs;
    // An EventEmitter without an "error" listener throws; errors are reported here instead.
    this.xmpp.on("error", (err: unknown) => {
      if (this.started && !this.stopped) opts.log.warn({ err: String(err) }, "XMPP connection error");
    });
    this.xmpp.on("stanza", (el: Element) => this.emit("stanza", el));
    this.xmpp.on("online", () => this.onOnline());
    this.xmpp.on("disconnect", () => {
      if (!this.everOnline || this.stopped) return;
      opts.log.warn({ service: opts.service }, "disconnected from the XMPP server; reconnecting");
      this.emit("disconnected");
    });
    this.xmpp.reconnect.on("reconnecting", () => {
      // The next attempt after this one waits twice as long, up to the maximum.
      this.xmpp.reconnect.delay = Math.min(this.xmpp.reconnect.delay * 2, opts.reconnectMaxDelayMs);
    });
  }

  /** The session's full JID once online. */
  get jid(): JID | null {
    return this.xmpp.jid;
  }

  get online(): boolean {
    return this.xmpp.status === "online" && !this.stopped;
  }

  /** True once start() failed or stop() was called: this session will never be online again. */
  get closed(): boolean {
    return this.stopped;
  }

  /**
   * Connects and logs in; resolves once online. Rejects within `timeoutMs` with an error
   * naming the service and the cause (unreachable, refused login, no encryption), and then
   * leaves nothing running. Later disconnects reconnect on their own.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error("XmppConnection.start() may be called once");
    this.started = true;
    const { service, username, domain, timeoutMs } = this.opts;
    try {
      await withTimeout(
        this.xmpp.start(),
        timeoutMs,
        `the XMPP server at ${service} did not let ${username}@${domain} log in within ${timeoutMs} ms`,
      );
    } catch (err) {
      this.stopped = true;
      this.xmpp.reconnect.stop();
      await this.closeQuietly();
      throw this.describeStartError(err);
    }
  }

  /** Sends a stanza; throws NotConnectedError when not online (the caller may retry later). */
  async send(el: Element): Promise<void> {
    if (!this.online) throw new NotConnectedError(`not connected to the XMPP server at ${this.opts.service}`);
    await this.xmpp.send(el);
  }

  /** Sends an iq and resolves with the result; rejects on an error reply or after `timeoutMs`. */
  async request(iq: Element): Promise<Element> {
    if (!this.online) throw new NotConnectedError(`not connected to the XMPP server at ${this.opts.service}`);
    return this.xmpp.iqCaller.request(iq, this.opts.timeoutMs);
  }

  /** Stops reading from the server (back-pressure); `resume` reads again. */
  pause(): void {
    this.xmpp.socket?.pause();
  }

  resume(): void {
    this.xmpp.socket?.resume();
  }

  /** Closes the session and stops reconnecting. Never throws. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.xmpp.reconnect.stop();
    await this.closeQuietly();
  }

  private async closeQuietly(): Promise<void> {
    if (this.xmpp.status === "offline") return;
    try {
      await withTimeout(this.xmpp.stop(), this.opts.timeoutMs, "closing the XMPP stream timed out");
    } catch (err) {
      this.opts.log.debug({ err: String(err) }, "error while closing the XMPP connection");
      this.xmpp.socket?.destroy();
    }
  }

  private onOnline(): void {
    if (this.stopped) {
      // A reconnect finished after stop(): close it again.
      void this.closeQuietly();
      return;
    }
    const reconnected = this.everOnline;
    this.everOnline = true;
    this.xmpp.reconnect.delay = this.opts.reconnectDelayMs;
    if (reconnected) this.opts.log.info({ service: this.opts.service }, "reconnected to the XMPP server");
    this.emit("online", { reconnected });
  }

  private async authenticate(
    authenticate: Authenticate,
    mechanisms: string[],
    entity: Client,
    userAgent: Element,
  ): Promise<void> {
    const secure = entity.isSecure();
    if (!secure && !this.opts.allowInsecure) {
      this.refusal = new Error(
        `refusing to log in to ${this.opts.service} over an unencrypted connection (the server offered no ` +
          `STARTTLS); use xmpps://, enable TLS on the server, or set allowInsecure: true`,
      );
      throw this.refusal;
    }
    // Without TLS never send the password itself (PLAIN); prefer a challenge mechanism.
    const mechanism = secure ? mechanisms[0] : mechanisms.find((m) => m !== "PLAIN");
    if (mechanism === undefined) {
      this.refusal = new Error(
        `the XMPP server at ${this.opts.service} offers no usable login mechanism ` +
          `(offered: ${mechanisms.join(", ") || "none"}${secure ? "" : "; PLAIN is not used without TLS"})`,
      );
      throw this.refusal;
    }
    await authenticate({ username: this.opts.username, password: this.opts.password }, mechanism, userAgent);
  }

  private describeStartError(err: unknown): Error {
    if (this.refusal) return this.refusal;
    const { service, username, domain } = this.opts;
    const e = err as { name?: string; condition?: string; code?: string; message?: string };
    if (e.name === "SASLError") {
      return new Error(
        `XMPP login as ${username}@${domain} at ${service} failed: ${e.condition ?? e.message ?? "refused"}` +
          (e.condition === "not-authorized" ? " (check username and password)" : ""),
        { cause: err },
      );
    }
    if (typeof e.code === "string") {
      return new Error(`cannot reach the XMPP server at ${service}: ${e.code} ${e.message ?? ""}`.trim(), {
        cause: err,
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    return new Error(
      message.includes(service) ? message : `connecting to the XMPP server at ${service} failed: ${message}`,
      { cause: err },
    );
  }
}
