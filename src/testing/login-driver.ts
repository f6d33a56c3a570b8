/**
 * Drives an adapter's logins without a homeserver, as the framework would: a login flow goes
 * through the framework's own step machine (the one behind the `login` command and the
 * provisioning API: the step's type, every field present, patterns and select options, a
 * PermanentError turned into what the user reads), and `connect` gets a SessionContext that
 * records what the session sends (RecordingSessionContext). For testing a LoginProcess and a
 * RemoteSession on their own; prove the whole path through a Bridge too.
 *
 *   const driver = new LoginDriver(adapter.logins!, { userId: "@alice:example.org" });
 *   await driver.start("password");
 *   await driver.submit({ username: "alice", password: "secret" });
 *   const { session, ctx } = await driver.connect();
 */
import type {
  BridgeUser,
  CompletedLogin,
  Login,
  LoginState,
  LoginStep,
  LoginsCapability,
  PermissionLevel,
  RemoteSession,
  SessionContext,
} from "../adapter/index.js";
import { silentLogger } from "../common/logger.js";
import type { JsonValue } from "../store/json.js";
import { LoginProcesses } from "../users/login-processes.js";
import { RecordingContext, testCall, type RecordingContextOptions } from "./recording-context.js";

/** A SessionContext that records what a session asks of the framework (see RecordingContext). */
export class RecordingSessionContext extends RecordingContext implements SessionContext {
  /** Every state the session reported, oldest first. */
  readonly states: Array<{ state: Exclude<LoginState, "connecting">; message?: string }> = [];

  constructor(
    public login: Login,
    opts: RecordingContextOptions = {},
  ) {
    super(opts);
  }

  /** Recorded as a call ("setState", with the state and message) and in `states`. */
  setState(state: Exclude<LoginState, "connecting">, message?: string): void {
    this.states.push(message === undefined ? { state } : { state, message });
    void this.record("setState", undefined, undefined, [state, message]);
  }

  /** Recorded as a call ("reconnect", with the message) and in `states` as a transient disconnect. */
  reconnect(message?: string): void {
    this.states.push(
      message === undefined ? { state: "transient_disconnect" } : { state: "transient_disconnect", message },
    );
    void this.record("reconnect", undefined, undefined, [message]);
  }

  /** Recorded as a call ("tell", with the text), what the user would read in their management room. */
  tell(text: string): Promise<void> {
    return this.record("tell", undefined, undefined, [text]);
  }

  /** Changes `login` as the framework would store it; recorded as a call. */
  updateLogin(changes: { name?: string; data?: JsonValue }): Promise<void> {
    this.login = { ...this.login, ...changes };
    return this.record("updateLogin", undefined, undefined, [changes]);
  }
}

export interface LoginDriverOptions extends RecordingContextOptions {
  /** The Matrix user logging in (default @alice:<domain>, domain default example.org). */
  userId?: string;
  /** Their level from config `permissions` (default "user"). */
  permission?: PermissionLevel;
}

/** One user's login, step by step, through the framework's checks. See the file's comment. */
export class LoginDriver {
  /** The step the login is at; undefined before `start`. */
  step: LoginStep | undefined;
  /** What the complete step handed over (what the framework would store); undefined before. */
  completed: CompletedLogin | undefined;
  readonly user: BridgeUser;
  private readonly processes: LoginProcesses;
  private processId: string | undefined;

  constructor(
    private readonly logins: LoginsCapability,
    private readonly opts: LoginDriverOptions = {},
  ) {
    this.user = {
      userId: opts.userId ?? `@alice:${opts.domain ?? "example.org"}`,
      permission: opts.permission ?? "user",
    };
    this.processes = new LoginProcesses({
      capability: logins,
      complete: (_user, login) => {
        this.completed = login;
        return Promise.resolve(login.id);
      },
      timeoutMs: 15 * 60_000,
      waitTimeoutMs: 5 * 60_000,
      log: silentLogger(),
    });
  }

  /**
   * Starts a flow (default: the first) and answers its first step. Rejects with the message
   * the user would read (an unknown flow, a PermanentError of the process).
   */
  async start(flowId?: string): Promise<LoginStep> {
    const { processId, step } = await this.processes.start(this.user, flowId, testCall());
    this.processId = processId;
    return (this.step = step);
  }

  /**
   * Answers the current `user_input` step (or `cookies`, by `type`) with `values` and returns
   * the next step. A missing field or one off its pattern is refused before the adapter sees
   * it, and so is a PermanentError thrown by the process: the rejection carries what the user
   * would read ("login failed: wrong password"). A failed step ends the login, as it does on
   * the bridge.
   */
  async submit(
    values: Record<string, string>,
    type: "user_input" | "cookies" = "user_input",
  ): Promise<LoginStep> {
    return this.next({ type, values: { ...values } });
  }

  /** Waits on the current `display_and_wait` step (a QR code scanned) for the next step. */
  async wait(): Promise<LoginStep> {
    return this.next({ type: "display_and_wait" });
  }

  /**
   * Calls `connect` with the completed login, as the framework does after storing it, and a
   * RecordingSessionContext bound to it. Rejects when the login is not complete, and with
   * whatever `connect` rejects with.
   */
  async connect(): Promise<{ session: RemoteSession; ctx: RecordingSessionContext; login: Login }> {
    const done = this.completed;
    if (done === undefined)
      throw new Error(`the login is not complete (it is at step ${this.step?.id ?? "none: call start"})`);
    const login: Login = {
      id: done.id,
      userId: this.user.userId,
      name: done.name ?? done.id,
      data: done.data,
    };
    const ctx = new RecordingSessionContext(login, this.opts);
    const session = await this.logins.connect(login, ctx, testCall());
    return { session, ctx, login };
  }

  /** Cancels the login in progress, if any (the process's `cancel` is called). */
  async cancel(): Promise<void> {
    if (this.processId !== undefined && this.step?.type !== "complete")
      await this.processes.cancel(this.user, this.processId).catch(() => undefined);
  }

  private async next(input: Parameters<LoginProcesses["submit"]>[3]): Promise<LoginStep> {
    if (this.processId === undefined) throw new Error("no login in progress: call start first");
    const { step } = await this.processes.submit(this.user, this.processId, undefined, input, testCall());
    return (this.step = step);
  }
}

/**
 * The shortest path: starts `flowId`, submits each of `answers` in turn, and connects the
 * completed login. Rejects (with what the user would read) when a step fails or the flow does
 * not complete with the answers given.
 */
export async function logIn(
  logins: LoginsCapability,
  answers: ReadonlyArray<Record<string, string>>,
  opts: LoginDriverOptions & { flowId?: string } = {},
): Promise<{ session: RemoteSession; ctx: RecordingSessionContext; login: Login }> {
  const driver = new LoginDriver(logins, opts);
  await driver.start(opts.flowId);
  for (const values of answers) await driver.submit(values);
  return driver.connect();
}
