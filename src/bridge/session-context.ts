import type {
  Login,
  LoginState,
  Portal,
  PortalDirectory,
  PortalSpec,
  SessionContext,
} from "../adapter/adapter.js";
import type { JsonValue } from "../store/json.js";
import type { LiveLogin, Logins } from "../users/logins.js";
import type { Portals } from "./portals.js";
import { RemoteContext, type RemoteContextParts } from "./remote-context.js";

/**
 * A login's view of the portals: its own DM portal of a remote room comes before the shared
 * one, and `ensure` with `direct` makes a DM portal for this login.
 */
class LoginPortals implements PortalDirectory {
  constructor(
    private readonly portals: Portals,
    private readonly login: LiveLogin,
  ) {}

  async get(remoteId: string): Promise<Portal | null> {
    return (await this.portals.get(remoteId, this.login.id)) ?? this.portals.get(remoteId);
  }

  byRoomId(roomId: string): Promise<Portal | null> {
    return this.portals.byRoomId(roomId);
  }

  /** A shared portal: when private, this login's user is invited (they have access through the login); see Portals.usedBy. */
  async ensure(remoteId: string, spec?: PortalSpec): Promise<Portal> {
    if (spec?.direct)
      return this.portals.ensure(remoteId, spec, { login: this.login.id, userId: this.login.userId });
    const portal = await this.portals.ensure(remoteId, spec);
    await this.portals.usedBy(portal, this.login.id);
    return portal;
  }

  aliasFor(remoteId: string): string {
    return this.portals.aliasFor(remoteId);
  }
}

/**
 * The SessionContext of one login: the adapter's BridgeContext whose sends carry the login
 * (DM portals, double puppeting; see RemoteContext.enqueue), plus the login's state and data.
 * One per stored login, so it holds nothing but references.
 */
export class LoginContext extends RemoteContext implements SessionContext {
  override readonly portals: PortalDirectory;

  constructor(
    parts: RemoteContextParts,
    private readonly live: LiveLogin,
    private readonly logins: Logins,
  ) {
    super(parts, live.id);
    this.portals = new LoginPortals(parts.portals, live);
  }

  get login(): Login {
    return this.live;
  }

  setState(state: Exclude<LoginState, "connecting">, message?: string): void {
    this.logins.setState(this.live, state, message);
  }

  updateLogin(changes: { name?: string; data?: JsonValue }): Promise<void> {
    return this.logins.update(this.live, changes);
  }

  reconnect(message?: string): void {
    this.logins.reconnect(this.live, message);
  }

  tell(text: string): Promise<void> {
    return this.logins.tell(this.live, text);
  }
}
