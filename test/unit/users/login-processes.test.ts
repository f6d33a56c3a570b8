import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type {
  BridgeUser,
  CompletedLogin,
  LoginInput,
  LoginProcess,
  LoginStep,
  LoginsCapability,
} from "../../../src/adapter/index.js";
import { PermanentError } from "../../../src/adapter/index.js";
import { silentLogger } from "../../../src/common/logger.js";
import { testCall } from "../../../src/testing/index.js";
import { UserFacingError } from "../../../src/users/errors.js";
import { LoginProcesses } from "../../../src/users/login-processes.js";

const ALICE: BridgeUser = { userId: "@alice:example.org", permission: "user" };
const BOB: BridgeUser = { userId: "@bob:example.org", permission: "user" };

const FORM: LoginStep = {
  type: "user_input",
  id: "form",
  instructions: "Log in",
  fields: [
    { type: "username", id: "user", name: "Username", pattern: "[a-z]+" },
    { type: "password", id: "pass", name: "Password", pattern: "\\S{4,}" },
    { type: "select", id: "server", name: "Server", options: ["a", "b"], defaultValue: "a" },
  ],
};

/** A scripted process: answers its steps in order, recording what it was given. */
class Scripted implements LoginProcess {
  readonly inputs: LoginInput[] = [];
  cancelled = 0;
  constructor(
    private readonly steps: Array<LoginStep | Error | ((input: LoginInput) => Promise<LoginStep>)>,
  ) {}
  start(): Promise<LoginStep> {
    return this.next(undefined);
  }
  submit(input: LoginInput): Promise<LoginStep> {
    this.inputs.push(structuredClone(input));
    return this.next(input);
  }
  cancel(): Promise<void> {
    this.cancelled++;
    return Promise.resolve();
  }
  private next(input: LoginInput | undefined): Promise<LoginStep> {
    const step = this.steps.shift();
    if (step === undefined) return Promise.reject(new Error("no more steps"));
    if (step instanceof Error) return Promise.reject(step);
    if (typeof step === "function") return step(input!);
    return Promise.resolve(step);
  }
}

const done = (id: string): LoginStep => ({
  type: "complete",
  id: "done",
  instructions: "ok",
  login: { id, data: { token: "t" } },
});

function setup(
  make: () => Scripted,
  opts: { timeoutMs?: number; waitTimeoutMs?: number; perUser?: number } = {},
) {
  const made: Scripted[] = [];
  const completed: Array<{ user: string; login: CompletedLogin }> = [];
  const capability: LoginsCapability = {
    flows: [
      { id: "password", name: "Password", description: "" },
      { id: "other", name: "Other", description: "" },
    ],
    start: () => {
      const p = make();
      made.push(p);
      return p;
    },
    connect: () => Promise.reject(new Error("unused")),
  };
  const processes = new LoginProcesses({
    capability,
    complete: (user, login) => {
      completed.push({ user: user.userId, login });
      return Promise.resolve(login.id);
    },
    timeoutMs: opts.timeoutMs ?? 60_000,
    waitTimeoutMs: opts.waitTimeoutMs ?? 60_000,
    log: silentLogger(),
    ...(opts.perUser !== undefined ? { perUser: opts.perUser } : {}),
  });
  return { processes, made, completed };
}

const code = (c: UserFacingError["code"], message?: RegExp) => (err: unknown) =>
  err instanceof UserFacingError && err.code === c && (message === undefined || message.test(err.message));

describe("LoginProcesses", () => {
  it("starts the first flow by default and names the flows when asked for an unknown one", async () => {
    const { processes, made } = setup(() => new Scripted([FORM]));
    const first = await processes.start(ALICE, undefined, testCall());
    assert.equal(first.step.id, "form");
    assert.equal(made.length, 1);
    await assert.rejects(
      processes.start(ALICE, "sms", testCall()),
      code("not_found", /no login flow "sms"; the flows are: password, other/),
    );
  });

  it("checks the input before the adapter sees it: type, step id, fields, patterns, options", async () => {
    const { processes, made } = setup(() => new Scripted([FORM, done("alice")]));
    const { processId } = await processes.start(ALICE, "password", testCall());
    const submit = (stepId: string | undefined, input: LoginInput) =>
      processes.submit(ALICE, processId, stepId, input, testCall());
    await assert.rejects(
      submit("form", { type: "cookies", values: {} }),
      code("bad_state", /waits for user_input/),
    );
    await assert.rejects(
      submit("other", { type: "user_input", values: {} }),
      code("bad_state", /at step "form", not "other"/),
    );
    await assert.rejects(
      submit("form", { type: "user_input", values: { pass: "hunter22" } }),
      code("bad_input", /the field "user" \(Username\) is missing/),
    );
    await assert.rejects(
      submit("form", { type: "user_input", values: { user: "Alice", pass: "hunter22" } }),
      code("bad_input", /"Alice" is not a valid Username/),
    );
    await assert.rejects(
      submit("form", { type: "user_input", values: { user: "alice", pass: "x y" } }),
      (err: unknown) =>
        code("bad_input", /^that is not a valid Password$/)(err) && !String(err).includes("x y"),
    );
    await assert.rejects(
      submit("form", { type: "user_input", values: { user: "alice", pass: "hunter22", server: "c" } }),
      code("bad_input", /"c" is not one of the choices for Server: a, b/),
    );
    assert.deepEqual(made[0]!.inputs, [], "the adapter saw none of it");
    const next = await submit("form", { type: "user_input", values: { user: "alice", pass: "hunter22" } });
    assert.equal(next.step.type, "complete");
    assert.deepEqual(made[0]!.inputs, [
      { type: "user_input", values: { user: "alice", pass: "hunter22", server: "a" } },
    ]);
  });

  it("stores a completed login once and forgets the process", async () => {
    const { processes, completed } = setup(() => new Scripted([FORM, done("alice")]));
    const { processId } = await processes.start(ALICE, undefined, testCall());
    await processes.submit(
      ALICE,
      processId,
      "form",
      { type: "user_input", values: { user: "a", pass: "pppp" } },
      testCall(),
    );
    assert.deepEqual(completed, [{ user: ALICE.userId, login: { id: "alice", data: { token: "t" } } }]);
    assert.equal(processes.size, 0);
    await assert.rejects(
      processes.submit(ALICE, processId, "form", { type: "user_input", values: {} }, testCall()),
      code("not_found"),
    );
  });

  it("never lets a user see or touch another user's process", async () => {
    const { processes } = setup(() => new Scripted([FORM]));
    const { processId } = await processes.start(ALICE, undefined, testCall());
    await assert.rejects(
      processes.submit(BOB, processId, undefined, { type: "user_input", values: {} }, testCall()),
      code("not_found"),
    );
    await assert.rejects(processes.cancel(BOB, processId), code("not_found"));
    assert.equal(processes.of(BOB.userId).length, 0);
    assert.equal(processes.of(ALICE.userId).length, 1);
  });

  it("ends the process with what to tell the user when the adapter refuses", async () => {
    const { processes, made } = setup(() => new Scripted([FORM, new PermanentError("wrong password")]));
    const { processId } = await processes.start(ALICE, undefined, testCall());
    await assert.rejects(
      processes.submit(
        ALICE,
        processId,
        undefined,
        { type: "user_input", values: { user: "a", pass: "pppp" } },
        testCall(),
      ),
      code("bad_input", /^login failed: wrong password$/),
    );
    assert.equal(made[0]!.cancelled, 1);
    assert.equal(processes.size, 0);
  });

  it("says an unexpected failure without its details", async () => {
    const { processes } = setup(() => new Scripted([new Error("ECONNREFUSED 10.0.0.1")]));
    await assert.rejects(
      processes.start(ALICE, undefined, testCall()),
      (err: unknown) =>
        code("bad_input", /the remote network did not accept it/)(err) && !String(err).includes("10.0.0.1"),
    );
  });

  it("refuses a malformed step from the adapter", async () => {
    const { processes } = setup(
      () => new Scripted([{ type: "user_input", id: "x", instructions: "", fields: [] }]),
    );
    await assert.rejects(processes.start(ALICE, undefined, testCall()), /malformed: step x has no fields/);
  });

  it("does not run two submits of one process at once", async () => {
    let release!: () => void;
    const slow = () => new Promise<LoginStep>((r) => (release = () => r(done("alice"))));
    const { processes } = setup(() => new Scripted([FORM, slow]));
    const { processId } = await processes.start(ALICE, undefined, testCall());
    const input: LoginInput = { type: "user_input", values: { user: "a", pass: "pppp" } };
    const first = processes.submit(ALICE, processId, undefined, input, testCall());
    await assert.rejects(
      processes.submit(ALICE, processId, undefined, input, testCall()),
      code("bad_state", /still being processed/),
    );
    release();
    assert.equal((await first).step.type, "complete");
  });

  it("cancels a process left untouched for too long", async () => {
    const { processes, made } = setup(() => new Scripted([FORM]), { timeoutMs: 30 });
    await processes.start(ALICE, undefined, testCall());
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(processes.size, 0);
    assert.equal(made[0]!.cancelled, 1);
  });

  it("keeps at most perUser processes per user, cancelling the oldest", async () => {
    const { processes, made } = setup(() => new Scripted([FORM]), { perUser: 2 });
    const first = await processes.start(ALICE, undefined, testCall());
    await processes.start(ALICE, undefined, testCall());
    await processes.start(ALICE, undefined, testCall());
    assert.equal(made[0]!.cancelled, 1);
    assert.deepEqual(
      processes
        .of(ALICE.userId)
        .map((p) => p.processId)
        .includes(first.processId),
      false,
    );
    assert.equal(processes.of(ALICE.userId).length, 2);
  });

  it("gives a display_and_wait its own deadline", async () => {
    const waiting: LoginStep = {
      type: "display_and_wait",
      id: "qr",
      instructions: "scan",
      display: { type: "qr", data: "code" },
    };
    let seen: AbortSignal | undefined;
    const { processes } = setup(
      () =>
        new (class extends Scripted {
          override submit(_input: LoginInput, call?: { signal: AbortSignal }): Promise<LoginStep> {
            seen = call?.signal;
            return new Promise((_, reject) =>
              call?.signal.addEventListener("abort", () => reject(new PermanentError("the code expired"))),
            );
          }
        })([waiting]),
      { waitTimeoutMs: 30 },
    );
    const { processId } = await processes.start(ALICE, undefined, testCall());
    const keepAlive = setTimeout(() => undefined, 5_000); // AbortSignal.timeout's timer does not hold the process
    await assert.rejects(
      processes.submit(ALICE, processId, "qr", { type: "display_and_wait" }, testCall()),
      code("bad_input", /the code expired/),
    );
    clearTimeout(keepAlive);
    assert.equal(seen?.aborted, true);
  });
});
