/**
 * Minimal types for the parts of irc-framework 4.14 this example uses (the package ships no
 * types and DefinitelyTyped has none). Only what irc-connection.ts touches is declared; the
 * event shapes are those emitted by irc-framework's src/commands/handlers/*.js.
 */
declare module "irc-framework" {
  import type { Socket } from "node:net";

  export interface ClientOptions {
    host: string;
    port: number;
    nick: string;
    username?: string;
    gecos?: string;
    password?: string;
    tls?: boolean;
    rejectUnauthorized?: boolean;
    encoding?: string;
    auto_reconnect?: boolean;
    ping_interval?: number;
    ping_timeout?: number;
    version?: string | null;
    enable_echomessage?: boolean;
    /** SASL PLAIN credentials. */
    account?: { account: string; password: string };
    /** Close the connection when SASL fails (or the server has no SASL). */
    sasl_disconnect_on_fail?: boolean;
  }

  /** Fields common to events caused by a user (prefix `nick!ident@hostname`). */
  export interface UserEventBase {
    nick: string;
    ident?: string;
    hostname?: string;
    /** Server time (ms) when the server sent the server-time tag. */
    time?: number;
  }

  export interface MessageEvent extends UserEventBase {
    from_server: boolean;
    target: string;
    message: string;
  }
  export interface JoinEvent extends UserEventBase {
    channel: string;
  }
  export interface PartEvent extends UserEventBase {
    channel: string;
    message: string;
  }
  export interface KickEvent extends UserEventBase {
    channel: string;
    kicked: string;
    message: string;
  }
  export interface QuitEvent extends UserEventBase {
    message: string;
  }
  export interface NickEvent extends UserEventBase {
    new_nick: string;
  }
  /** TOPIC (has nick) or RPL_TOPIC / RPL_NOTOPIC on join (no nick). */
  export interface TopicEvent {
    nick?: string;
    channel: string;
    topic: string;
    time?: number;
  }
  export interface UserlistEvent {
    channel: string;
    users: Array<{ nick: string; modes: string[] }>;
  }
  export interface WhoisEvent {
    nick: string;
    ident?: string;
    hostname?: string;
    real_name?: string;
    /** "not_found" when the server answered ERR_NOSUCHNICK. */
    error?: string;
  }
  export interface IrcErrorEvent {
    error: string;
    channel?: string;
    nick?: string;
    reason?: string;
  }
  export interface RegisteredEvent {
    nick: string;
  }
  export interface SaslFailedEvent {
    /** "fail", "unsupported_mechanism", "capability_missing", "nick_locked", "too_long". */
    reason: string;
    message?: string;
  }
  export interface NickInUseEvent {
    nick: string;
    reason: string;
  }

  export interface ClientEvents {
    registered: RegisteredEvent;
    privmsg: MessageEvent;
    action: MessageEvent;
    notice: MessageEvent;
    join: JoinEvent;
    part: PartEvent;
    kick: KickEvent;
    quit: QuitEvent;
    nick: NickEvent;
    topic: TopicEvent;
    userlist: UserlistEvent;
    whois: WhoisEvent;
    "irc error": IrcErrorEvent;
    "nick in use": NickInUseEvent;
    "nick invalid": NickInUseEvent;
    "sasl failed": SaslFailedEvent;
    "socket close": Error | false;
  }

  export interface NetTransport {
    socket: Socket | null;
  }

  export class Client {
    constructor(options?: Partial<ClientOptions>);
    readonly connected: boolean;
    user: { nick: string };
    connection: {
      transport: NetTransport | null;
      /** Writes one raw line; `callback` runs once it was flushed (or at once if not connected). */
      write(line: string, callback?: () => void): boolean;
      /** Sends `data` (if any) and closes the socket. */
      end(data?: string, hadError?: boolean): void;
    };
    connect(options: ClientOptions): void;
    /** Writes one raw line, exactly as given, when called with a single string. */
    raw(line: string): void;
    changeNick(nick: string): void;
    on<E extends keyof ClientEvents>(event: E, listener: (event: ClientEvents[E]) => void): this;
    off<E extends keyof ClientEvents>(event: E, listener: (event: ClientEvents[E]) => void): this;
    removeAllListeners(): this;
  }

  const irc: { Client: typeof Client };
  export default irc;
}
