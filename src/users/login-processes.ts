import { randomBytes } from "node:crypto";
import type {
  BridgeUser,
  CallContext,
  CompletedLogin,
  LoginField,
  LoginInput,
  LoginProcess,
  LoginStep,
  LoginsCapability,
} from "../adapter/adapter.js";
import type { Logger } from "../common/logger.js";
import { PermanentError } from "../inbox/errors.js";
import { UserFacingError } from "./errors.js";

/** One login process in flight. Kept in memory only: a restart forgets it (the user starts again). */
interface Running {
  readonly id: string;
  readonly userId: string;
  readonly flowId: string;
  readonly process: LoginProcess;
  step: LoginStep;
  /** A start or submit is running: calls never overlap. */
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

export interface LoginProcessesOptions {
  capability: LoginsCapability;
  /** Stores and connects a finished login; returns its id. Called once per completed process. */
  complete(user: BridgeUser, login: CompletedLogin, call: CallContext): Promise<string>;
  /** An untouched process is cancelled after this long. */
  timeoutMs: number;
  /** How long a display_and_wait submit may wait for the remote side. */
  waitTimeoutMs: number;
  log: Logger;
  /** At most this many processes per user; starting one more cancels that user's oldest. Default 3. */
  perUser?: number;
  /** At most this many in all; past it, starting one is refused. Default 10,000. */
  max?: number;
}

/** What a process answers: its id and the step the user is at now. */
export interface ProcessStep {
  processId: string;
  step: LoginStep;
}

const FIELD_TYPES = new Set([
  "username",
  "phone_number",
  "email",
  "password",
  "2fa_code",
  "token",
  "url",
  "domain",
  "select",
]);

/**
 * Login processes: the step machine both the management room's `login` command and the
 * provisioning API drive. It owns what the adapter must not have to check: that a process
 * belongs to the caller, that input has the current step's type and every field (patterns
 * and select options included), that calls never overlap, that idle processes expire, and
 * that a complete step is stored exactly once. A failing adapter call ends the process with
 * a UserFacingError carrying what the user should be told.
 */
export class LoginProcesses {
  private readonly running = new Map<string, Running>();

  constructor(private readonly o: LoginProcessesOptions) {}

  get size(): number {
    return this.running.size;
  }

  /** The user's processes, oldest first. */
  of(userId: string): ProcessStep[] {
    return [...this.running.values()]
      .filter((r) => r.userId === userId)
      .map((r) => ({ processId: r.id, step: r.step }));
  }

  /** Starts a login with `flowId` (default: the first flow) and answers its first step. */
  async start(user: BridgeUser, flowId: string | undefined, call: CallContext): Promise<ProcessStep> {
    const flows = this.o.capability.flows;
    const flow = flowId === undefined ? flows[0] : flows.find((f) => f.id === flowId);
    if (flow === undefined) {
      throw new UserFacingError(
        "not_found",
        flowId === undefined
          ? "this bridge offers no way to log in"
          : `there is no login flow "${flowId}"; the flows are: ${flows.map((f) => f.id).join(", ")}`,
      );
    }
    if (this.running.size >= (this.o.max ?? 10_000))
      throw new UserFacingError("bad_state", "too many logins are in progress; try again in a few minutes");
    const mine = [...this.running.values()].filter((r) => r.userId === user.userId);
    for (const old of mine.slice(0, Math.max(0, mine.length - (this.o.perUser ?? 3) + 1)))
      await this.end(old, "replaced by a newer login");
    const process = this.o.capability.start(flow.id, user);
    const first = await this.guard(user, undefined, () => process.start(call), process);
    const running: Running = {
      id: randomBytes(16).toString("base64url"),
      userId: user.userId,
      flowId: flow.id,
      process,
      step: first,
      busy: false,
      timer: undefined,
    };
    this.running.set(running.id, running);
    this.touch(running);
    this.o.log.info({ userId: user.userId, flow: flow.id, processId: running.id }, "login started");
    return this.settle(user, running, first, call);
  }

  /**
   * Submits input for the current step. `stepId`, when given, must be the current step's id
   * (the provisioning API names it in its path; the chat walkthrough does not).
   */
  async submit(
    user: BridgeUser,
    processId: string,
    stepId: string | undefined,
    input: LoginInput,
    call: CallContext,
  ): Promise<ProcessStep> {
    const running = this.get(user, processId);
    if (running.busy)
      throw new UserFacingError("bad_state", "the previous step of this login is still being processed");
    const step = running.step;
    if (stepId !== undefined && stepId !== step.id)
      throw new UserFacingError("bad_state", `this login is at step "${step.id}", not "${stepId}"`);
    if (input.type !== step.type)
      throw new UserFacingError("bad_state", `this login waits for ${step.type}, not ${input.type}`);
    if (step.type === "user_input" && input.type === "user_input") checkFields(step.fields, input.values);
    if (step.type === "cookies" && input.type === "cookies") checkCookies(step, input.values);
    running.busy = true;
    this.touch(running);
    try {
      // A display_and_wait waits for the remote side (a QR code scanned): its own, longer limit.
      const stepCall = input.type === "display_and_wait" ? withDeadline(call, this.o.waitTimeoutMs) : call;
      const next = await this.guard(
        user,
        running,
        () => running.process.submit(input, stepCall),
        running.process,
      );
      return await this.settle(user, running, next, call);
    } finally {
      running.busy = false;
    }
  }

  /** Abandons one of the user's processes. */
  async cancel(user: BridgeUser, processId: string): Promise<void> {
    await this.end(this.get(user, processId), "cancelled");
  }

  /** Cancels everything (the bridge stops). */
  async close(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => this.end(r, "the bridge is stopping")));
  }

  /** The process, if it is the user's; another user's reads as not found (never "forbidden"). */
  private get(user: BridgeUser, processId: string): Running {
    const running = this.running.get(processId);
    if (running === undefined || running.userId !== user.userId)
      throw new UserFacingError("not_found", "no such login in progress (it may have expired)");
    return running;
  }

  /** Checks a step the adapter gave; a complete step is stored and ends the process. */
  private async settle(
    user: BridgeUser,
    running: Running,
    step: LoginStep,
    call: CallContext,
  ): Promise<ProcessStep> {
    checkStep(step);
    running.step = step;
    if (step.type !== "complete") return { processId: running.id, step };
    this.running.delete(running.id);
    clearTimeout(running.timer);
    try {
      await this.o.complete(user, step.login, call);
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError("bad_state", `the login could not be saved: ${(err as Error).message}`);
    }
    this.o.log.info({ userId: user.userId, loginId: step.login.id, processId: running.id }, "login complete");
    return { processId: running.id, step };
  }

  /** Runs an adapter call; its failure ends the process with what to tell the user. */
  private async guard<T>(
    user: BridgeUser,
    running: Running | undefined,
    fn: () => Promise<T>,
    process: LoginProcess,
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (running) await this.end(running, "failed");
      else await process.cancel?.().catch(() => undefined);
      this.o.log.info({ err, userId: user.userId }, "login step failed");
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError(
        "bad_input",
        err instanceof PermanentError
          ? `login failed: ${err.userMessage}`
          : "login failed: the remote network did not accept it",
      );
    }
  }

  private async end(running: Running, why: string): Promise<void> {
    if (!this.running.delete(running.id)) return;
    clearTimeout(running.timer);
    this.o.log.info({ userId: running.userId, processId: running.id, why }, "login process ended");
    try {
      await running.process.cancel?.();
    } catch (err) {
      this.o.log.warn({ err }, "a login process's cancel failed");
    }
  }

  private touch(running: Running): void {
    clearTimeout(running.timer);
    running.timer = setTimeout(() => void this.end(running, "expired"), this.o.timeoutMs);
    running.timer.unref();
  }
}

/** A missing field, a value off its pattern or options: answered before the adapter sees it. */
function checkFields(fields: readonly LoginField[], values: Record<string, string>): void {
  for (const field of fields) {
    const given = Object.hasOwn(values, field.id) ? values[field.id] : undefined;
    values[field.id] = checkField(field, given);
  }
}

/**
 * One field's value, checked: a missing or empty one takes the default, or is refused naming
 * the field; a value off the pattern or the options is refused (a secret is never quoted back).
 * Returns the value to submit. Pure.
 */
export function checkField(field: LoginField, given: unknown): string {
  const value = given === undefined || given === "" ? field.defaultValue : given;
  if (value === undefined || value === "")
    throw new UserFacingError("bad_input", `the field "${field.id}" (${field.name}) is missing`);
  if (typeof value !== "string")
    throw new UserFacingError("bad_input", `the field "${field.id}" must be a string`);
  if (field.pattern !== undefined && !new RegExp(`^(?:${field.pattern})$`, "u").test(value)) {
    const shown = isSecretField(field) ? "that" : `"${value}"`;
    throw new UserFacingError("bad_input", `${shown} is not a valid ${field.name}`);
  }
  if (field.type === "select" && !(field.options ?? []).includes(value))
    throw new UserFacingError(
      "bad_input",
      `"${value}" is not one of the choices for ${field.name}: ${(field.options ?? []).join(", ")}`,
    );
  return value;
}

/** Fields whose values are secrets: never logged or quoted, redacted from the room after reading. */
export function isSecretField(field: Pick<LoginField, "type">): boolean {
  return field.type === "password" || field.type === "token" || field.type === "2fa_code";
}

function checkCookies(step: Extract<LoginStep, { type: "cookies" }>, values: Record<string, string>): void {
  for (const field of step.cookies.fields)
    if (field.required && (typeof values[field.id] !== "string" || values[field.id] === ""))
      throw new UserFacingError("bad_input", `the cookie "${field.id}" is missing`);
}

/** An adapter's step that the framework could not show: a bug in the adapter, said plainly. */
function checkStep(step: LoginStep): void {
  const bad = (why: string) => new Error(`the adapter's login step is malformed: ${why}`);
  if (typeof step !== "object" || step === null) throw bad("not an object");
  if (typeof step.id !== "string" || step.id === "") throw bad("it has no id");
  switch (step.type) {
    case "user_input":
      if (!Array.isArray(step.fields) || step.fields.length === 0) throw bad(`step ${step.id} has no fields`);
      for (const f of step.fields)
        if (typeof f.id !== "string" || !FIELD_TYPES.has(f.type))
          throw bad(`step ${step.id} has a field with a bad id or type`);
      return;
    case "complete":
      if (typeof step.login?.id !== "string" || step.login.id === "")
        throw bad(`complete step ${step.id} names no login id`);
      return;
    case "display_and_wait":
    case "cookies":
      return;
    default:
      throw bad(`unknown step type ${JSON.stringify((step as { type?: unknown }).type)}`);
  }
}

/** The call, with its signal also aborting after `ms`. */
function withDeadline(call: CallContext, ms: number): CallContext {
  return { log: call.log, signal: AbortSignal.any([call.signal, AbortSignal.timeout(ms)]) };
}
