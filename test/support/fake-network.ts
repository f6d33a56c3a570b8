/**
 * A small remote network with accounts, for testing logins end to end: accounts log in with
 * a password (or a QR code "scanned" by the test), each login's session records what it
 * sent as its user, and the test makes remote users talk (to rooms and in DMs). The adapter
 * built on it (`loginsAdapter`) has the logins capability and, optionally, bot-level
 * handlers (a relay bot), so tests can drive every routing case.
 */
import type {
  BridgeContext,
  CallContext,
  Login,
  LoginProcess,
  LoginStep,
  MatrixMessage,
  MatrixPresence,
  Portal,
  RemoteNetworkAdapter,
  RemoteSession,
  SessionContext,
} from "../../src/adapter/index.js";
import { PermanentError } from "../../src/adapter/index.js";

export interface Sent {
  /** Who the remote network saw sending: an account, or "bot". */
  as: string;
  room: string;
  text: string;
  relayed?: boolean;
}

export class FakeNetwork {
  readonly accounts = new Map<string, { password: string; token: string }>();
  readonly sent: Sent[] = [];
  /** Live sessions by account. */
  readonly sessions = new Map<string, FakeSession>();
  /** Accounts whose token was revoked: connects fail with bad credentials. */
  readonly revoked = new Set<string>();
  /** Accounts that refuse direct chats: startDM with them fails with a PermanentError. */
  readonly refusesDMs = new Set<string>();
  /** While true, connects fail as if the network were down. */
  down = false;
  /** QR codes shown and waiting for a scan: code -> account. */
  private readonly qr = new Map<string, (account: string) => void>();
  connects = 0;

  addAccount(name: string, password: string): void {
    this.accounts.set(name, { password, token: `tok-${name}-${Math.random().toString(36).slice(2)}` });
  }

  /** The test scans the QR code shown to the user, as `account`. */
  scan(code: string, account: string): boolean {
    const waiting = this.qr.get(code);
    if (!waiting) return false;
    this.qr.delete(code);
    waiting(account);
    return true;
  }

  waitForScan(code: string, signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      this.qr.set(code, resolve);
      signal.addEventListener("abort", () => reject(new Error("QR code expired")), { once: true });
    });
  }

  /** A remote user `from` writes to `account` directly: the session opens a DM portal. */
  async directMessage(from: string, account: string, text: string): Promise<void> {
    const session = this.sessions.get(account);
    if (!session) throw new Error(`${account} has no session`);
    const room = dmRoom(from, account);
    await session.ctx.portals.ensure(room, { direct: true, members: [from] });
    await session.ctx.send(room, from, text);
  }
}

/** The remote id of the one-to-one chat of two accounts. */
export function dmRoom(a: string, b: string): string {
  return `dm:${[a, b].sort().join(":")}`;
}

export class FakeSession implements RemoteSession {
  disconnected = false;
  /** The user's Matrix presence as the bridge told it, oldest first. */
  readonly presences: MatrixPresence[] = [];

  constructor(
    readonly network: FakeNetwork,
    readonly account: string,
    readonly ctx: SessionContext,
  ) {}

  onMessage(message: MatrixMessage, portal: Portal): Promise<string> {
    const entry: Sent = { as: this.account, room: portal.remoteId, text: message.body };
    if (message.relayed) entry.relayed = true;
    this.network.sent.push(entry);
    return Promise.resolve(`m${this.network.sent.length}`);
  }

  onPresence(presence: MatrixPresence): Promise<void> {
    this.presences.push(presence);
    return Promise.resolve();
  }

  startDM(user: string): Promise<string> {
    if (!this.network.accounts.has(user)) throw new PermanentError(`there is no user ${user}`);
    if (this.network.refusesDMs.has(user)) throw new PermanentError(`${user} does not take direct messages`);
    return Promise.resolve(dmRoom(user, this.account));
  }

  resolveIdentifier(identifier: string): Promise<string | null> {
    return Promise.resolve(this.network.accounts.has(identifier) ? identifier : null);
  }

  logout(): Promise<void> {
    this.network.revoked.add(this.account);
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    this.disconnected = true;
    if (this.network.sessions.get(this.account) === this) this.network.sessions.delete(this.account);
    return Promise.resolve();
  }
}

class PasswordLogin implements LoginProcess {
  constructor(private readonly network: FakeNetwork) {}

  start(): Promise<LoginStep> {
    return Promise.resolve({
      type: "user_input",
      id: "credentials",
      instructions: "Log in to the fake network.",
      fields: [
        { type: "username", id: "username", name: "Username", pattern: "[a-z0-9_]+" },
        { type: "password", id: "password", name: "Password" },
      ],
    });
  }

  submit(input: Parameters<LoginProcess["submit"]>[0]): Promise<LoginStep> {
    if (input.type !== "user_input") throw new Error("unexpected input");
    const { username, password } = input.values;
    const account = this.network.accounts.get(username!);
    if (!account || account.password !== password) throw new PermanentError("wrong username or password");
    return Promise.resolve({
      type: "complete",
      id: "done",
      instructions: "Logged in.",
      login: { id: username!, name: `${username} on fake`, data: { token: account.token } },
    });
  }
}

class QrLogin implements LoginProcess {
  readonly code = `qr-${Math.random().toString(36).slice(2)}`;
  cancelled = false;

  constructor(private readonly network: FakeNetwork) {}

  start(): Promise<LoginStep> {
    return Promise.resolve({
      type: "display_and_wait",
      id: "qr",
      instructions: "Scan this code with the fake app.",
      display: { type: "qr", data: this.code },
    });
  }

  async submit(_input: unknown, call: CallContext): Promise<LoginStep> {
    const account = await this.network.waitForScan(this.code, call.signal);
    const token = this.network.accounts.get(account)!.token;
    return {
      type: "complete",
      id: "done",
      instructions: "Logged in.",
      login: { id: account, data: { token } },
    };
  }

  cancel(): Promise<void> {
    this.cancelled = true;
    return Promise.resolve();
  }
}

/**
 * The adapter: logins with a password or QR flow. With `relayBot`, it also has bot-level
 * handlers (one connection speaking for users without a login, as "bot").
 */
export function loginsAdapter(
  network: FakeNetwork,
  opts: { relayBot?: boolean } = {},
): RemoteNetworkAdapter & { ctx?: BridgeContext } {
  const adapter: RemoteNetworkAdapter & { ctx?: BridgeContext } = {
    name: "fake",
    start(ctx) {
      adapter.ctx = ctx;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    queryRoom: (id) => Promise.resolve(id.startsWith("missing") ? null : { name: `Fake ${id}` }),
    queryUser: (id) => Promise.resolve(network.accounts.has(id) ? { displayName: `Fake ${id}` } : null),
    logins: {
      flows: [
        { id: "password", name: "Password", description: "Username and password" },
        { id: "qr", name: "QR code", description: "Scan a code with the fake app" },
      ],
      start: (flowId) => (flowId === "qr" ? new QrLogin(network) : new PasswordLogin(network)),
      connect(login: Login, ctx: SessionContext) {
        network.connects++;
        if (network.down) return Promise.reject(new Error("network unreachable"));
        const account = network.accounts.get(login.id);
        const data = login.data as { token?: string };
        if (!account || network.revoked.has(login.id) || account.token !== data.token)
          return Promise.reject(new PermanentError("the token was revoked"));
        const session = new FakeSession(network, login.id, ctx);
        network.sessions.set(login.id, session);
        return Promise.resolve(session);
      },
    },
  };
  if (opts.relayBot) {
    adapter.onMessage = (message, portal) => {
      network.sent.push({
        as: "bot",
        room: portal.remoteId,
        text: `<${message.sender.displayName}> ${message.body}`,
      });
      return Promise.resolve();
    };
  }
  return adapter;
}
