/**
 * Logging in to IRC as yourself: the flows and their one step. IRC has no accounts to check a
 * nick against before connecting, so the process only asks and checks the syntax; `connect`
 * (session.ts) is where the server says yes (a SASL refusal is then "bad credentials").
 *
 *   nick      a nick only
 *   sasl      a nick and an account password, sent with SASL PLAIN while registering
 *   nickserv  a nick and a password, sent to NickServ (IDENTIFY) once registered
 */
import {
  PermanentError,
  type JsonValue,
  type LoginField,
  type LoginFlow,
  type LoginInput,
  type LoginProcess,
  type LoginStep,
} from "matrix-bridgekit";
import { isValidNick, nickToId } from "./irc-ids.js";

export type IrcAuth = "none" | "sasl" | "nickserv";

/** What a login stores (sealed at rest when logins.encryptionKey is set). */
export interface IrcLoginData {
  /** The nick to connect with (changed by the `nick` command). */
  nick: string;
  auth: IrcAuth;
  /** For sasl and nickserv. */
  password?: string;
}

export const IRC_LOGIN_FLOWS: readonly LoginFlow[] = [
  { id: "nick", name: "Nick", description: "Connect to IRC with a nick of your choice" },
  {
    id: "sasl",
    name: "Nick and SASL",
    description: "Connect with your registered nick and password (SASL PLAIN)",
  },
  {
    id: "nickserv",
    name: "Nick and NickServ",
    description: "Connect, then identify to NickServ with your password",
  },
];

const NICK_PATTERN = "[A-Za-z\\[\\]\\\\`_^{|}][A-Za-z0-9\\[\\]\\\\`_^{|}-]{0,29}";

/** Reads stored login data, refusing what this adapter never wrote. */
export function parseLoginData(data: JsonValue, loginId: string): IrcLoginData {
  const d = data as Partial<IrcLoginData> | null;
  const auth = d?.auth;
  if (
    typeof d?.nick !== "string" ||
    !isValidNick(d.nick) ||
    (auth !== "none" && auth !== "sasl" && auth !== "nickserv") ||
    (auth !== "none" && typeof d.password !== "string")
  ) {
    throw new PermanentError(`the stored IRC login ${loginId} is not readable; log in again`);
  }
  return auth === "none" ? { nick: d.nick, auth } : { nick: d.nick, auth, password: d.password! };
}

/** One attempt to log in with one of IRC_LOGIN_FLOWS. */
export class IrcLoginProcess implements LoginProcess {
  constructor(
    private readonly flowId: string,
    private readonly server: string,
  ) {}

  start(): Promise<LoginStep> {
    const fields: LoginField[] = [
      {
        type: "username",
        id: "nick",
        name: "Nick",
        description: "Your nick on IRC (letters, digits and []\\`_^{|}-, not starting with a digit)",
        pattern: NICK_PATTERN,
      },
    ];
    if (this.flowId !== "nick") {
      fields.push({
        type: "password",
        id: "password",
        name: "Password",
        description:
          this.flowId === "sasl" ? "Your account's password (SASL PLAIN)" : "Your NickServ password",
      });
    }
    return Promise.resolve({
      type: "user_input",
      id: `irc.${this.flowId}`,
      instructions: `Log in to IRC on ${this.server}.`,
      fields,
    });
  }

  submit(input: LoginInput): Promise<LoginStep> {
    if (input.type !== "user_input") throw new Error("unreachable: the framework checks the step type");
    const nick = input.values.nick ?? "";
    if (!isValidNick(nick)) return Promise.reject(new PermanentError(`"${nick}" is not a valid IRC nick`));
    const auth: IrcAuth = this.flowId === "sasl" ? "sasl" : this.flowId === "nickserv" ? "nickserv" : "none";
    const data: IrcLoginData =
      auth === "none" ? { nick, auth } : { nick, auth, password: input.values.password! };
    return Promise.resolve({
      type: "complete",
      id: "irc.complete",
      instructions: `Connecting to IRC as ${nick}.`,
      login: { id: nickToId(nick), name: `${nick} on ${this.server}`, data: data as unknown as JsonValue },
    });
  }
}
