/**
 * Minimal types for the parts of @xmpp/client 0.14 this example uses (the package ships no
 * types). Only what xmpp-connection.ts, the stanza helpers and the tests touch is declared; the
 * shapes follow @xmpp/connection, @xmpp/client-core, @xmpp/iq and ltx (which @xmpp/xml wraps).
 */
declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";
  import type { Socket } from "node:net";

  /** An XML element (ltx). Attribute values are strings once built with `xml()`. */
  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    parent: Element | null;
    /** True if the element has this name (and namespace, when given). */
    is(name: string, xmlns?: string): boolean;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    /** The text of the first child with this name, or null when there is none. */
    getChildText(name: string, xmlns?: string): string | null;
    getChildElements(): Element[];
    /** The concatenated text children. */
    getText(): string;
    text(): string;
    append(...nodes: Array<Element | string>): Element;
    toString(): string;
  }

  export type XmlChild = Element | string | null | undefined | false | XmlChild[];

  /** Builds an element; attributes that are null or undefined are left out. */
  export function xml(
    name: string,
    attrs?: Record<string, string | number | null | undefined> | null,
    ...children: XmlChild[]
  ): Element;

  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    getLocal(): string;
    getDomain(): string;
    getResource(): string;
    equals(other: JID): boolean;
    toString(): string;
  }

  export function jid(address: string): JID;
  export function jid(local: string | null, domain: string, resource?: string): JID;

  /** The SASL step: authenticates with the credentials and mechanism chosen. */
  export type Authenticate = (
    credentials: { username: string; password: string },
    mechanism: string,
    userAgent?: Element,
  ) => Promise<void>;

  export interface ClientOptions {
    /** e.g. `xmpp://127.0.0.1:5222` (STARTTLS when offered) or `xmpps://host:5223` (direct TLS). */
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    /** Called to authenticate instead of the built-in choice of mechanism. */
    credentials?: (
      authenticate: Authenticate,
      mechanisms: string[],
      fast: unknown,
      entity: Client,
    ) => Promise<void>;
    /** How long opening and closing the stream may take, in ms (default 2000). */
    timeout?: number;
    userAgent?: Element;
  }

  export interface IqCaller {
    /** Sends an iq and resolves with the result stanza; rejects with a StanzaError on type="error". */
    request(stanza: Element, timeoutMs?: number): Promise<Element>;
  }

  export interface Reconnect extends EventEmitter {
    /** Milliseconds between a disconnect and the next attempt. */
    delay: number;
    start(): void;
    stop(): void;
  }

  export type ClientStatus =
    | "offline"
    | "connecting"
    | "connect"
    | "opening"
    | "open"
    | "online"
    | "closing"
    | "close"
    | "disconnecting"
    | "disconnect";

  export interface Client extends EventEmitter {
    status: ClientStatus;
    jid: JID | null;
    socket: Socket | null;
    timeout: number;
    iqCaller: IqCaller;
    reconnect: Reconnect;
    /** Connects, authenticates, binds; resolves once online. */
    start(): Promise<JID>;
    /** Closes the stream and the socket. */
    stop(): Promise<unknown>;
    send(element: Element): Promise<void>;
    isSecure(): boolean;
  }

  export function client(options: ClientOptions): Client;
}
