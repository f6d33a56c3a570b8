import { LRUCache } from "lru-cache";
import type { BridgeUser, CallContext, LoginField, LoginStep } from "../adapter/adapter.js";
import { UserFacingError } from "../users/errors.js";
import { checkField, isSecretField, type ProcessStep } from "../users/login-processes.js";
import { needLogins, redactSecret } from "./builtins.js";
import { capitalise } from "./notice.js";
import { stateWords } from "../users/logins.js";
import type { CommandServices, Invocation } from "./types.js";

/** A login the user is walking through in chat: which process, and which field comes next. */
interface ChatState {
  processId: string;
  roomId: string;
  step: LoginStep;
  field: number;
  values: Record<string, string>;
}

/**
 * The `login` command's conversation: one step at a time, a user_input step's fields asked
 * one by one (each checked as it comes), secrets redacted from the room once read, a
 * display_and_wait step shown and waited for in the background (the room's other messages
 * are not held up), cookies steps sent to a bridge manager app (a chat cannot carry them).
 * The process itself is LoginProcesses'; this only remembers where the conversation is.
 */
export class ChatLogins {
  /**
   * At most one conversation per user; it ends with its process. Bounded: a conversation
   * abandoned mid-way (its process expired) is dropped when room is needed.
   */
  private readonly byUser = new LRUCache<string, ChatState>({ max: 10_000 });

  constructor(private readonly s: CommandServices) {}

  /** True when the user's next message in this room answers a field. Must not do I/O. */
  waitsForInput(userId: string, roomId: string): boolean {
    const state = this.byUser.peek(userId);
    return state !== undefined && state.roomId === roomId && state.step.type === "user_input";
  }

  async start(inv: Invocation, flowId: string | undefined, call: CallContext): Promise<void> {
    const { processes } = this.logins();
    await this.cancel(inv.user);
    const first = await processes.start(inv.user, flowId, call);
    await this.show(inv, first, call);
  }

  /** A message answering the current field. */
  async input(inv: Invocation, body: string, call: CallContext): Promise<void> {
    const state = this.byUser.get(inv.user.userId);
    if (state?.step.type !== "user_input") return;
    const field = state.step.fields[state.field]!;
    if (isSecretField(field)) await redactSecret(this.s, inv);
    const given = body.trim() === "-" ? undefined : body.trim();
    try {
      state.values[field.id] = checkField(field, given);
    } catch (err) {
      await inv.reply(`${(err as Error).message}. Try again, or send \`cancel\`.`);
      return;
    }
    state.field++;
    if (state.field < state.step.fields.length) {
      await inv.reply(ask(state.step.fields[state.field]!));
      return;
    }
    const values = state.values;
    await this.advance(inv, state, call, () =>
      this.logins().processes.submit(
        inv.user,
        state.processId,
        undefined,
        { type: "user_input", values },
        call,
      ),
    );
  }

  /** Ends the user's conversation and its process; false when there was none. */
  async cancel(user: BridgeUser): Promise<boolean> {
    const state = this.byUser.get(user.userId);
    if (!state) return false;
    this.byUser.delete(user.userId);
    await this.logins()
      .processes.cancel(user, state.processId)
      .catch(() => undefined); // it may have expired already
    return true;
  }

  private async show(inv: Invocation, answer: ProcessStep, call: CallContext): Promise<void> {
    const step = answer.step;
    switch (step.type) {
      case "complete": {
        this.byUser.delete(inv.user.userId);
        const status = this.logins().live.get(step.login.id)?.status();
        const state = status && status.state !== "connected" ? ` (${stateWords(status.state)})` : "";
        await inv.reply(`Logged in as ${step.login.name ?? step.login.id}${state}.`);
        return;
      }
      case "user_input": {
        this.remember(inv, answer);
        await inv.reply(`${step.instructions}\n${ask(step.fields[0]!)}`);
        return;
      }
      case "display_and_wait": {
        const state = this.remember(inv, answer);
        const shown = step.display.data !== undefined ? `\n\`${step.display.data}\`` : "";
        await inv.reply(`${step.instructions}${shown}`);
        // Waiting may take minutes: not in this room's handler call, which has a deadline.
        const background: CallContext = { signal: new AbortController().signal, log: call.log };
        void this.advance(inv, state, background, () =>
          this.logins().processes.submit(
            inv.user,
            answer.processId,
            step.id,
            { type: "display_and_wait" },
            background,
          ),
        );
        return;
      }
      case "cookies": {
        await this.logins()
          .processes.cancel(inv.user, answer.processId)
          .catch(() => undefined);
        this.byUser.delete(inv.user.userId);
        await inv.reply(
          "This way of logging in needs a web browser: use a bridge manager app (it speaks the provisioning API), or another flow (`login <flow>`).",
        );
        return;
      }
    }
  }

  /** Where the user's conversation is now: at `answer`'s step, its first field. */
  private remember(inv: Invocation, answer: ProcessStep): ChatState {
    const state: ChatState = {
      processId: answer.processId,
      roomId: inv.roomId,
      step: answer.step,
      field: 0,
      values: {},
    };
    this.byUser.set(inv.user.userId, state);
    return state;
  }

  /** Runs the next submit and shows its step; a failure ends the conversation with why. */
  private async advance(
    inv: Invocation,
    state: ChatState,
    call: CallContext,
    submit: () => Promise<ProcessStep>,
  ): Promise<void> {
    try {
      await this.show(inv, await submit(), call);
    } catch (err) {
      if (this.byUser.get(inv.user.userId) === state) this.byUser.delete(inv.user.userId);
      const message =
        err instanceof UserFacingError ? err.message : "the login failed unexpectedly; try again later";
      if (!(err instanceof UserFacingError)) this.s.log.error({ err }, "login step failed");
      await inv.reply(`${capitalise(message)}.`);
    }
  }

  private logins(): NonNullable<CommandServices["logins"]> {
    return needLogins(this.s);
  }
}

/** How a field is asked for. */
function ask(field: LoginField): string {
  const about = field.description ? ` (${field.description})` : "";
  const choices = field.type === "select" && field.options ? `: one of ${field.options.join(", ")}` : "";
  const fallback = field.defaultValue !== undefined ? `; send \`-\` for ${field.defaultValue}` : "";
  const secret = isSecretField(field) ? " I will remove your message from the room once I have read it." : "";
  return `${field.name}${about}${choices}${fallback}?${secret}`;
}
