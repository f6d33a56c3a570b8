/**
 * What the provisioning API asks of the bridge. The HTTP layer (routes.ts) authenticates
 * the caller, turns paths and JSON into these calls and the answers back into the JSON
 * shapes of ../../docs/provisioning.md; the Bridge implements it on top of its users and
 * logins (src/users). Every method acts for `caller` only: a login or process of another
 * user is answered as not found. Acting for someone else is settled before the call: with
 * the shared secret, or as an admin naming another user in `?user_id=`, `caller` is that
 * other user (with their own permission).
 *
 * Methods reject with a UserFacingError (src/users/errors.ts) for what the caller got wrong;
 * anything else is a 500 with a generic message (and is logged).
 */
import type {
  LoginFlow,
  LoginId,
  LoginInput,
  LoginState,
  LoginStep,
  PermissionLevel,
  RemoteUserId,
} from "../adapter/adapter.js";

/** Who a provisioning call is for, once authenticated. */
export interface ProvisioningCaller {
  userId: string;
  permission: PermissionLevel;
}

/** The bridge, as `GET /v3/whoami` describes it. */
export interface BridgeInfo {
  /** Human name of the network, e.g. "IRC". */
  networkName: string;
  /** The adapter's name, e.g. "irc". */
  networkId: string;
  /** mxc:// icon, when the adapter has one. */
  networkIcon?: string;
  /** The network's website, e.g. "https://libera.chat" (whoami's `network_url`). */
  networkUrl?: string;
  /** What identifies the bridge software to managers (whoami's `beeper_bridge_type`). */
  bridgeType?: string;
  botUserId: string;
  commandPrefix: string;
  /** The homeserver's server name. */
  homeserver: string;
}

/** One of the caller's logins. */
export interface LoginSummary {
  id: LoginId;
  name: string;
  state: LoginState;
  /** Why, for a bad state ("wrong password"). */
  stateMessage?: string;
  /** Unix ms of the last state change. */
  stateSince: number;
  /** The remote account as the network shows it, when the adapter knows. */
  profile?: RemoteProfile;
}

/** A login's remote account (whoami's `profile`). */
export interface RemoteProfile {
  name?: string;
  username?: string;
  phone?: string;
  email?: string;
  /** mxc:// */
  avatarUrl?: string;
}

/** A login process's current step, with the process id the next call names. */
export interface StepAnswer {
  processId: string;
  step: LoginStep;
}

/** A remote user found by `resolveIdentifier`. */
export interface ResolvedIdentifier {
  id: RemoteUserId;
  /** Their ghost's user id. */
  mxid: string;
  name?: string;
  avatarUrl?: string;
  /** The DM portal with them, when there is (or, for create_dm, now is) one. */
  dmRoomId?: string;
  /** create_dm made the DM portal just now (answered 201 rather than 200). */
  justCreated?: boolean;
}

export interface ProvisioningService {
  /** The caller's permission from config, or null when they may not use the bridge. Must not do I/O. */
  permission(userId: string): PermissionLevel | null;
  bridgeInfo(): BridgeInfo;
  /** The adapter's login flows; empty when it has no logins capability. */
  flows(): readonly LoginFlow[];
  /** The caller's management room, when they have one. */
  managementRoom(caller: ProvisioningCaller): Promise<string | undefined>;
  logins(caller: ProvisioningCaller): Promise<LoginSummary[]>;
  /** Starts a login process; answers its first step. */
  startLogin(caller: ProvisioningCaller, flowId: string): Promise<StepAnswer>;
  /**
   * Submits the current step of a process. `stepId` and `input.type` must be the current
   * step's (else bad_state). A display_and_wait input resolves when the remote side moved on.
   */
  submitLogin(
    caller: ProvisioningCaller,
    processId: string,
    stepId: string,
    input: LoginInput,
  ): Promise<StepAnswer>;
  cancelLogin(caller: ProvisioningCaller, processId: string): Promise<void>;
  /** Logs out one of the caller's logins, or every one with the id "all". */
  logout(caller: ProvisioningCaller, loginId: LoginId): Promise<void>;
  /**
   * A remote user by identifier, through the caller's login `loginId` (`?login_id=`; unknown
   * or another user's: not_found) or else their default one; with createDM, makes or finds
   * the DM portal.
   */
  resolveIdentifier(
    caller: ProvisioningCaller,
    identifier: string,
    opts: { createDM: boolean; loginId?: LoginId },
  ): Promise<ResolvedIdentifier>;
}
