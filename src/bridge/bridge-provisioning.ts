import type {
  BridgeUser,
  CallContext,
  LoginFlow,
  LoginInput,
  RemoteNetworkAdapter,
} from "../adapter/adapter.js";
import type { Logger } from "../common/logger.js";
import type {
  BridgeInfo,
  LoginSummary,
  ProvisioningCaller,
  ProvisioningService,
  ResolvedIdentifier,
  StepAnswer,
} from "../provisioning/service.js";
import { PermanentError } from "../inbox/errors.js";
import { UserFacingError } from "../users/errors.js";
import type { LoginProcesses } from "../users/login-processes.js";
import type { Logins } from "../users/logins.js";
import { atLeast, type Permissions } from "../users/permissions.js";
import type { DirectChats } from "./direct-chats.js";
import type { Ghosts } from "./ghosts.js";

export interface BridgeProvisioningOptions {
  adapter: RemoteNetworkAdapter;
  permissions: Permissions;
  info: BridgeInfo;
  users: { getUser(userId: string): Promise<{ managementRoom?: string } | undefined> };
  logins?: { live: Logins; processes: LoginProcesses };
  direct: DirectChats;
  ghosts: Ghosts;
  /** The time limit of one call into the adapter (appservice.handlerTimeoutMs). */
  callTimeoutMs: number;
  log: Logger;
}

/**
 * The provisioning API's side in the bridge: the same users, logins and login processes
 * the management room's commands use, for `caller` only (src/provisioning/routes.ts has
 * authenticated them and checked they may act for that user).
 */
export class BridgeProvisioning implements ProvisioningService {
  constructor(private readonly o: BridgeProvisioningOptions) {}

  permission(userId: string) {
    return this.o.permissions.level(userId);
  }

  bridgeInfo(): BridgeInfo {
    return this.o.info;
  }

  flows(): readonly LoginFlow[] {
    return this.o.adapter.logins?.flows ?? [];
  }

  async managementRoom(caller: ProvisioningCaller): Promise<string | undefined> {
    return (await this.o.users.getUser(caller.userId))?.managementRoom;
  }

  async logins(caller: ProvisioningCaller): Promise<LoginSummary[]> {
    if (!this.o.logins) return [];
    return (await this.o.logins.live.of(caller.userId)).map((s) => {
      const out: LoginSummary = { id: s.id, name: s.name, state: s.state, stateSince: s.since };
      if (s.message !== undefined) out.stateMessage = s.message;
      return out;
    });
  }

  async startLogin(caller: ProvisioningCaller, flowId: string): Promise<StepAnswer> {
    const { processes } = this.need(caller);
    return processes.start(this.user(caller), flowId, this.call(caller, this.o.callTimeoutMs));
  }

  async submitLogin(
    caller: ProvisioningCaller,
    processId: string,
    stepId: string,
    input: LoginInput,
  ): Promise<StepAnswer> {
    const { processes } = this.need(caller);
    // A display_and_wait waits as long as logins.waitTimeoutMs allows (LoginProcesses).
    const call = this.call(caller, input.type === "display_and_wait" ? undefined : this.o.callTimeoutMs);
    return processes.submit(this.user(caller), processId, stepId, input, call);
  }

  async cancelLogin(caller: ProvisioningCaller, processId: string): Promise<void> {
    await this.need(caller).processes.cancel(this.user(caller), processId);
  }

  async logout(caller: ProvisioningCaller, loginId: string): Promise<void> {
    const { live } = this.need(caller);
    const mine = await live.of(caller.userId);
    const targets = loginId === "all" ? mine : mine.filter((l) => l.id === loginId);
    if (targets.length === 0 && loginId !== "all")
      throw new UserFacingError("not_found", `you have no login "${loginId}"`);
    for (const login of targets) await live.logout(login.id, this.call(caller, this.o.callTimeoutMs));
  }

  async resolveIdentifier(
    caller: ProvisioningCaller,
    identifier: string,
    opts: { createDM: boolean; loginId?: string },
  ): Promise<ResolvedIdentifier> {
    if (identifier.trim() === "") throw new UserFacingError("bad_input", "the identifier is empty");
    const login = this.o.direct.loginOf(caller.userId, opts.loginId);
    const session = login.session;
    if (!session?.resolveIdentifier)
      throw new UserFacingError(
        "unsupported",
        `the ${this.o.adapter.name} bridge cannot look up remote users`,
      );
    const call = this.call(caller, this.o.callTimeoutMs);
    const id = await said(session.resolveIdentifier(identifier, call));
    if (id === null)
      throw new UserFacingError("not_found", `no ${this.o.adapter.name} user is "${identifier}"`);
    const out: ResolvedIdentifier = { id, mxid: this.o.ghosts.userId(id) };
    const profile = await this.o.adapter.queryUser?.(id, call).catch(() => null);
    if (profile?.displayName !== undefined) out.name = profile.displayName;
    if (profile?.avatarUrl?.startsWith("mxc://")) out.avatarUrl = profile.avatarUrl;
    if (opts.createDM) {
      const { portal, created } = await said(this.o.direct.open(caller.userId, id, call, login.id));
      out.dmRoomId = portal.roomId;
      if (created) out.justCreated = true;
    }
    return out;
  }

  private need(caller: ProvisioningCaller): NonNullable<BridgeProvisioningOptions["logins"]> {
    if (!this.o.logins)
      throw new UserFacingError("unsupported", `the ${this.o.adapter.name} bridge has no logins`);
    if (!atLeast(caller.permission, "user"))
      throw new UserFacingError("forbidden", "you may not log in to this bridge (you can only be relayed)");
    return this.o.logins;
  }

  private user(caller: ProvisioningCaller): BridgeUser {
    return { userId: caller.userId, permission: caller.permission };
  }

  private call(caller: ProvisioningCaller, timeoutMs: number | undefined): CallContext {
    return {
      signal: timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(timeoutMs),
      log: this.o.log.child({ userId: caller.userId }),
    };
  }
}

/** The adapter's PermanentError ("there is no such user") as an answer for the caller. */
async function said<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof PermanentError) throw new UserFacingError("bad_input", err.userMessage);
    throw err;
  }
}
