/**
 * A typed facade over irc-framework: one logical connection to an IRC server that registers,
 * reconnects with exponential backoff when the server goes away, rate-limits what it sends
 * and turns what it receives into a small typed event union. The adapter never touches
 * irc-framework directly.
 */
import { EventEmitter } from "node:events";
import PQueue from "p-queue";
import irc, { type Client } from "irc-framework";
import type { Logger } from "matrix-bridgekit";
import { ircEquals } from "./irc-ids.js";

export interface IrcConnectionOptions {
  host: string;
  port: number;
  tls: boolean;
  nick: string;
  username: string;
  realname: string;
  password?: string;
  /** SASL PLAIN: the account and its password. A refusal fails start() with an IrcAuthError. */
  sasl?: { account: string; password: string };
  /**
   * Reconnect by itself (with backoff) after a lost connection. Default true. A login's
   * connection says false: the framework's logins reconnect it (SessionContext.reconnect).
   */
  reconnect?: boolean;
  /** Bounds registration, JOIN and WHOIS waits. */
  timeoutMs: number;
  reconnectDelayMs: number;
  reconnectMaxDelayMs: number;
  /** At most `floodLines` lines per `floodIntervalMs` (0: no limit). */
  floodLines: number;
  floodIntervalMs: number;
  log: Logger;
}

/** What the server told us, reduced to what a bridge needs. `time` is ms since the epoch. */
export type IrcEvent =
  | { type: "privmsg" | "action" | "notice"; nick: string; target: string; text: string; time: number }
  | { type: "join"; nick: string; channel: string; time: number }
  | { type: "part"; nick: string; channel: string; reason: string; time: number }
  | { type: "kick"; nick: string; kicked: string; channel: string; reason: string; time: number }
  | { type: "quit"; nick: string; reason: string; time: number }
  | { type: "nick"; nick: string; newNick: string; time: number }
  | { type: "topic"; nick: string; channel: string; topic: string; time: number }
  /** The member list of a channel (RPL_ENDOFNAMES, after our JOIN or a NAMES), in order with the rest. */
  | { type: "names"; channel: string; nicks: string[]; time: number };

/** The server refused our SASL login (or offers no SASL): retrying will not help. */
export class IrcAuthError extends Error {
  override readonly name = "IrcAuthError";
}

/** The answer to a JOIN: the channel as the server spells it, its members and topic. */
export interface JoinResult {
  channel: string;
  nicks: string[];
  topic?: string;
}

interface ConnectionEvents {
  /** Registered on the server (first time and after every reconnect), with our nick. */
  registered: [nick: string];
  /** The connection was lost; a reconnect is scheduled unless stopping. */
  disconnected: [reason: string];
  event: [event: IrcEvent];
}

/** Errors the server answers a JOIN with, by irc-framework's name. */
const JOIN_ERRORS = new Set([
  "channel_is_full",
  "invite_only_channel",
  "banned_from_channel",
  "bad_channel_key",
  "too_many_channels",
]);

export class IrcConnection extends EventEmitter<ConnectionEvents> {
  private client: Client | null = null;
  private registered = false;
  private started = false;
  private stopping = false;
  private delay: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly sendQueue: PQueue;

  constructor(private readonly opts: IrcConnectionOptions) {
    super();
    this.delay = opts.reconnectDelayMs;
    this.sendQueue =
      opts.floodIntervalMs > 0
        ? new PQueue({ concurrency: 1, intervalCap: opts.floodLines, interval: opts.floodIntervalMs })
        : new PQueue({ concurrency: 1 });
  }

  /** Our current nick (the server may have given us another one than asked for). */
  get nick(): string {
    return this.client?.user.nick ?? this.opts.nick;
  }

  get isRegistered(): boolean {
    return this.registered;
  }

  /**
   * Connects and registers. Resolves once registered; rejects (without retrying) if the
   * server cannot be reached or does not register us within `timeoutMs`. After that, lost
   * connections are re-established with backoff until stop().
   */
  async start(): Promise<void> {
    if (this.started || this.stopping) throw new Error("IrcConnection.start() may be called once");
    await this.attempt();
    this.started = true;
    this.emit("registered", this.nick);
  }

  /**
   * Sends one raw IRC line (without CRLF), respecting the flood limit. Resolves once written
   * to the socket; rejects if not registered (now, or by the time the line's turn comes).
   */
  send(line: string): Promise<void> {
    if (/[\r\n\0]/.test(line)) return Promise.reject(new Error("an IRC line must not contain CR, LF or NUL"));
    return this.sendQueue.add(() => this.write(line));
  }

  /** Joins `channel`; resolves with its members and topic once the server listed them. */
  join(channel: string): Promise<JoinResult> {
    const client = this.client;
    if (!client || !this.registered) return Promise.reject(this.notConnected());
    let topic: string | undefined;
    return this.waitFor<JoinResult>(client, `JOIN ${channel}`, (done, fail) => {
      const onTopic = (e: { channel: string; topic: string; nick?: string }) => {
        if (ircEquals(e.channel, channel) && e.nick === undefined) topic = e.topic;
      };
      const onUserlist = (e: { channel: string; users: Array<{ nick: string }> }) => {
        if (!ircEquals(e.channel, channel)) return;
        const result: JoinResult = { channel: e.channel, nicks: e.users.map((u) => u.nick) };
        if (topic !== undefined && topic !== "") result.topic = topic;
        done(result);
      };
      const onError = (e: { error: string; channel?: string; reason?: string }) => {
        if (e.channel !== undefined && ircEquals(e.channel, channel) && JOIN_ERRORS.has(e.error)) {
          fail(new Error(`cannot join ${channel}: ${e.reason ?? e.error}`));
        }
      };
      client.on("topic", onTopic).on("userlist", onUserlist).on("irc error", onError);
      this.send(`JOIN ${channel}`).catch(fail);
      return () => {
        client.off("topic", onTopic).off("userlist", onUserlist).off("irc error", onError);
      };
    });
  }

  /**
   * Changes our nick; resolves with the nick the server confirmed. Rejects with a message for
   * people ("the nick x is in use on IRC") when the server refuses it.
   */
  changeNick(nick: string): Promise<string> {
    const client = this.client;
    if (!client || !this.registered) return Promise.reject(this.notConnected());
    const old = this.nick;
    return this.waitFor<string>(client, `NICK ${nick}`, (done, fail) => {
      const onNick = (e: { nick: string; new_nick: string }) => {
        if (ircEquals(e.nick, old)) done(e.new_nick);
      };
      const onInUse = (e: { nick: string }) => {
        if (ircEquals(e.nick, nick)) fail(new Error(`the nick ${nick} is in use on IRC`));
      };
      const onInvalid = (e: { nick: string; reason: string }) => {
        if (ircEquals(e.nick, nick)) fail(new Error(`the IRC server refused the nick ${nick}: ${e.reason}`));
      };
      client.on("nick", onNick).on("nick in use", onInUse).on("nick invalid", onInvalid);
      this.send(`NICK ${nick}`).catch(fail);
      return () => {
        client.off("nick", onNick).off("nick in use", onInUse).off("nick invalid", onInvalid);
      };
    });
  }

  /** Leaves `channel` (no wait for the server's answer). */
  part(channel: string, reason = ""): Promise<void> {
    return this.send(`PART ${channel}${reason ? ` :${reason.replace(/[\r\n\0]+/g, " ")}` : ""}`);
  }

  /** Asks the server about `nick`: its spelling and real name if online, null if not. */
  whois(nick: string): Promise<{ nick: string; realname?: string } | null> {
    const client = this.client;
    if (!client || !this.registered) return Promise.reject(this.notConnected());
    return this.waitFor(client, `WHOIS ${nick}`, (done, fail) => {
      const onWhois = (e: { nick: string; real_name?: string; error?: string }) => {
        if (!ircEquals(e.nick, nick)) return;
        if (e.error) done(null);
        else done(e.real_name !== undefined ? { nick: e.nick, realname: e.real_name } : { nick: e.nick });
      };
      client.on("whois", onWhois);
      this.send(`WHOIS ${nick}`).catch(fail);
      return () => void client.off("whois", onWhois);
    });
  }

  /** Stops reading from the server (back-pressure while what was read is delivered). */
  pause(): void {
    this.client?.connection.transport?.socket?.pause();
  }

  resume(): void {
    this.client?.connection.transport?.socket?.resume();
  }

  /** Sends QUIT and closes; no reconnects afterwards. Never throws. */
  async stop(message = "bridge shutting down"): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.sendQueue.clear();
    const client = this.client;
    if (!client) return;
    const closed = new Promise<void>((resolve) => {
      client.on("socket close", () => resolve());
    });
    try {
      client.connection.end(`QUIT :${message.replace(/[\r\n\0]/g, " ")}`);
    } catch (err) {
      this.opts.log.warn({ err }, "error while sending QUIT");
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)));
    await Promise.race([closed, timeout]);
    clearTimeout(timer);
    client.connection.transport?.socket?.destroy();
    client.removeAllListeners();
    this.client = null;
    this.registered = false;
  }

  private notConnected(): Error {
    return new Error(`not connected to IRC server ${this.opts.host}:${this.opts.port}`);
  }

  private write(line: string): Promise<void> {
    const client = this.client;
    if (!client || !this.registered) return Promise.reject(this.notConnected());
    return new Promise<void>((resolve, reject) => {
      const written = client.connection.write(line, () => resolve());
      if (!written && !client.connected) reject(this.notConnected());
    });
  }

  /**
   * Runs `setup` (which registers listeners and returns their removal) and settles with the
   * first of done / fail / the timeout, the connection closing, always removing the listeners.
   */
  private waitFor<T>(
    client: Client,
    what: string,
    setup: (done: (value: T) => void, fail: (err: unknown) => void) => () => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let cleanup = (): void => {};
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no answer to ${what} within ${this.opts.timeoutMs} ms`))),
        this.opts.timeoutMs,
      );
      const onClose = () => finish(() => reject(this.notConnected()));
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        cleanup();
        client.off("socket close", onClose);
        settle();
      };
      client.on("socket close", onClose);
      cleanup = setup(
        (value) => finish(() => resolve(value)),
        (err) => finish(() => reject(err instanceof Error ? err : new Error(String(err)))),
      );
    });
  }

  /** One connection attempt: resolves once registered, rejects if closed or timed out first. */
  private attempt(): Promise<void> {
    const { host, port, log } = this.opts;
    const client = new irc.Client();
    this.client = client;
    this.registered = false;
    let lastError = "";
    let authFailure: string | undefined;
    let nickTries = 0;

    const forward = (event: IrcEvent) => this.emit("event", event);
    const now = (t: number | undefined) => t ?? Date.now();
    client.on("privmsg", (e) => {
      if (!e.from_server)
        forward({ type: "privmsg", nick: e.nick, target: e.target, text: e.message, time: now(e.time) });
    });
    client.on("action", (e) => {
      if (!e.from_server)
        forward({ type: "action", nick: e.nick, target: e.target, text: e.message, time: now(e.time) });
    });
    client.on("notice", (e) => {
      if (!e.from_server && this.registered) {
        forward({ type: "notice", nick: e.nick, target: e.target, text: e.message, time: now(e.time) });
      }
    });
    client.on("join", (e) => forward({ type: "join", nick: e.nick, channel: e.channel, time: now(e.time) }));
    client.on("part", (e) =>
      forward({ type: "part", nick: e.nick, channel: e.channel, reason: e.message, time: now(e.time) }),
    );
    client.on("kick", (e) =>
      forward({
        type: "kick",
        nick: e.nick,
        kicked: e.kicked,
        channel: e.channel,
        reason: e.message,
        time: now(e.time),
      }),
    );
    client.on("quit", (e) => forward({ type: "quit", nick: e.nick, reason: e.message, time: now(e.time) }));
    client.on("nick", (e) => forward({ type: "nick", nick: e.nick, newNick: e.new_nick, time: now(e.time) }));
    client.on("topic", (e) => {
      // Only a TOPIC command has a nick; RPL_TOPIC (the topic on join) is handled by join().
      if (e.nick !== undefined) {
        forward({ type: "topic", nick: e.nick, channel: e.channel, topic: e.topic, time: now(e.time) });
      }
    });
    client.on("userlist", (e) =>
      forward({ type: "names", channel: e.channel, nicks: e.users.map((u) => u.nick), time: Date.now() }),
    );
    client.on("irc error", (e) => {
      if (e.error === "irc" || e.error === "password_mismatch") lastError = e.reason ?? e.error;
    });
    client.on("sasl failed", (e) => {
      authFailure =
        e.reason === "capability_missing"
          ? "the server offers no SASL"
          : `SASL login refused (${e.message ?? e.reason})`;
    });
    client.on("nick in use", (e) => {
      if (this.registered || nickTries >= 5) return;
      nickTries++;
      const next = `${this.opts.nick.slice(0, 28)}_${nickTries > 1 ? nickTries : ""}`;
      log.warn({ nick: e.nick, next }, "IRC nick in use, trying another");
      client.changeNick(next);
    });

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`IRC server ${host}:${port} did not register us within ${this.opts.timeoutMs} ms`));
        client.connection.end(undefined, true);
      }, this.opts.timeoutMs);

      client.on("registered", () => {
        this.registered = true;
        this.delay = this.opts.reconnectDelayMs;
        log.info({ host, port, nick: client.user.nick }, "registered on IRC server");
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
      client.on("socket close", (err) => {
        const wasRegistered = this.registered;
        if (this.client === client) {
          this.client = null;
          this.registered = false;
        }
        const reason = lastError || (err ? err.message : "connection closed by the server");
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(
            authFailure !== undefined
              ? new IrcAuthError(`IRC server ${host}:${port}: ${authFailure}`)
              : new Error(`cannot connect to IRC server ${host}:${port}: ${reason}`),
          );
        }
        client.removeAllListeners();
        if (this.stopping) return;
        if (wasRegistered) {
          log.warn({ host, port, reason }, "lost the IRC connection");
          this.emit("disconnected", reason);
        }
        if (this.started && this.opts.reconnect !== false) this.scheduleReconnect();
      });

      const options: Parameters<Client["connect"]>[0] = {
        host,
        port,
        tls: this.opts.tls,
        nick: this.opts.nick,
        username: this.opts.username,
        gecos: this.opts.realname,
        auto_reconnect: false,
        version: "matrix-bridgekit IRC bridge",
        enable_echomessage: false,
      };
      if (this.opts.password !== undefined) options.password = this.opts.password;
      if (this.opts.sasl !== undefined) {
        options.account = { ...this.opts.sasl };
        options.sasl_disconnect_on_fail = true;
      }
      client.connect(options);
    });
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const jitter = 0.8 + Math.random() * 0.4;
    const wait = Math.round(this.delay * jitter);
    this.delay = Math.min(this.delay * 2, this.opts.reconnectMaxDelayMs);
    this.opts.log.info({ waitMs: wait }, "reconnecting to IRC");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.attempt().then(
        () => this.emit("registered", this.nick),
        // The attempt's own close handler schedules the next one.
        (err: unknown) => this.opts.log.warn({ err: String(err) }, "IRC reconnect attempt failed"),
      );
    }, wait);
  }
}
