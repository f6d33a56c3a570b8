import type {
  BridgeUser,
  CallContext,
  CommandArgument,
  Portal,
  RemoteNetworkAdapter,
} from "../adapter/adapter.js";
import type { Intent } from "../client/intent.js";
import type { Logger } from "../common/logger.js";
import type { Portals } from "../bridge/portals.js";
import type { LoginProcesses } from "../users/login-processes.js";
import type { Logins } from "../users/logins.js";
import type { Permissions } from "../users/permissions.js";

/** What the commands need of the user store (src/users/user-store.ts). */
export interface CommandUserStore {
  ensureUser(userId: string): Promise<unknown>;
  getUser(userId: string): Promise<{ managementRoom?: string } | undefined>;
  setManagementRoom(userId: string, roomId: string | undefined): Promise<void>;
  userByManagementRoom(roomId: string): Promise<string | undefined>;
  setDoublePuppetToken(userId: string, token: string | undefined): Promise<void>;
  getDoublePuppetToken(userId: string): Promise<string | undefined>;
}

/** Checks a Matrix access token a user hands over for double puppeting; throws a UserFacingError. */
export type DoublePuppetCheck = (userId: string, token: string) => Promise<void>;

/** Everything the commands act on; the Bridge builds it. */
export interface CommandServices {
  adapter: RemoteNetworkAdapter;
  /** The prefix outside the management room, e.g. "!irc". */
  prefix: string;
  /** matrix-bridgekit's version, for `version`. */
  version: string;
  permissions: Permissions;
  users: CommandUserStore;
  portals: Portals;
  /** The bot, who answers. */
  bot: Intent;
  /** Present when the adapter has the logins capability. */
  logins?: { live: Logins; processes: LoginProcesses };
  /** Present when double puppeting with a user's own token is possible. */
  checkDoublePuppet?: DoublePuppetCheck;
  log: Logger;
}

/** One command being run: who, where, and how to answer. */
export interface Invocation {
  user: BridgeUser;
  roomId: string;
  /** The command message's event id. */
  eventId: string;
  /** The portal the command was sent in, if any. */
  portal?: Portal;
  /** True in the user's management room (no prefix needed). */
  managementRoom: boolean;
  reply(text: string): Promise<void>;
}

/** Who may run a command. */
export type Requirement = "relay" | "user" | "login" | "admin";

/** A command, built in or the adapter's (adapted to this shape). */
export interface Command {
  name: string;
  help: string;
  args?: readonly CommandArgument[];
  requires: Requirement;
  /** Only in a portal (`relay`, `unbridge`) or only outside one (`bridge`). */
  where?: "portal" | "not-portal";
  run(args: Record<string, string | number>, inv: Invocation, call: CallContext): Promise<void>;
}
