/**
 * What a user asked for and cannot have, said so that both faces of the bridge can answer
 * it: the management room turns it into a chat reply, the provisioning API into a Matrix
 * error (`code` picks the errcode; see src/provisioning/errors.ts). The message is for the
 * user: it names what was wrong (the login id, the step, the field) and never a secret.
 */
export class UserFacingError extends Error {
  constructor(
    /**
     * - not_found: no such login, login process or flow (or not the caller's: a user never
     *   learns whether another user's login exists);
     * - bad_state: a step of another type than the current one, a process already finished;
     * - bad_input: a missing field, a value not matching its pattern, a malformed identifier;
     * - forbidden: the user's permission level does not allow it;
     * - unsupported: the adapter does not have that capability;
     * - conflict: the remote account is already logged in by another Matrix user.
     */
    readonly code: "not_found" | "bad_state" | "bad_input" | "forbidden" | "unsupported" | "conflict",
    message: string,
  ) {
    super(message);
    this.name = "UserFacingError";
  }
}
