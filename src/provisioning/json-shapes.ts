/**
 * The provisioning API's JSON, as mautrix-go's bridgev2 writes it (bridgev2/login.go,
 * bridgev2/matrix/provisioning.go, bridgev2/provisionutil): snake_case keys; optional keys
 * left out when empty, as Go's `omitempty` does; timestamps of login states in Unix seconds
 * (Go's jsontime.Unix), although the OpenAPI file says milliseconds.
 */
import type { LoginCookieField, LoginField, LoginFlow, LoginState, LoginStep } from "../adapter/adapter.js";
import type { BridgeInfo, LoginSummary, RemoteProfile, ResolvedIdentifier, StepAnswer } from "./service.js";

type Json = Record<string, unknown>;

/** `{[key]: value}` when value is set (not undefined, "" or []), else `{}`: Go's omitempty. */
function opt(key: string, value: unknown): Json {
  if (value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) return {};
  return { [key]: value };
}

export const flowJson = (flow: LoginFlow): Json => ({
  name: flow.name,
  description: flow.description,
  id: flow.id,
});

const fieldJson = (field: LoginField): Json => ({
  type: field.type,
  id: field.id,
  name: field.name,
  description: field.description ?? "",
  ...opt("default_value", field.defaultValue),
  ...opt("pattern", field.pattern),
  ...opt("options", field.options),
});

const cookieFieldJson = (field: LoginCookieField): Json => ({
  id: field.id,
  required: field.required ?? false,
  sources: field.sources.map((source) => ({
    type: source.type,
    name: source.name,
    ...opt("cookie_domain", source.cookieDomain),
  })),
  ...opt("pattern", field.pattern),
});

/** The step-specific object, under a key named after the step's type. */
function stepParams(step: LoginStep): Json {
  switch (step.type) {
    case "user_input":
      return { fields: step.fields.map(fieldJson) };
    case "display_and_wait":
      return {
        type: step.display.type,
        ...opt("data", step.display.data),
        ...opt("image_url", step.display.imageUrl),
      };
    case "cookies":
      return {
        url: step.cookies.url,
        ...opt("user_agent", step.cookies.userAgent),
        fields: step.cookies.fields.map(cookieFieldJson),
        ...opt("extract_js", step.cookies.extractJs),
      };
    case "complete":
      // Only the id: the login's data (tokens) never leaves the bridge.
      return { user_login_id: step.login.id };
  }
}

/**
 * A login step as `login/start` and `login/step` answer it: `{login_id, type, step_id,
 * instructions, <type>: {...}}`, `login_id` being the login process's id.
 */
export function stepJson(answer: StepAnswer): Json {
  const { step } = answer;
  return {
    login_id: answer.processId,
    type: step.type,
    step_id: step.id,
    instructions: step.instructions,
    [step.type]: stepParams(step),
  };
}

/** bridgev2's BridgeStateEvent for each login state. */
const STATE_EVENTS: Record<LoginState, string> = {
  connecting: "CONNECTING",
  connected: "CONNECTED",
  transient_disconnect: "TRANSIENT_DISCONNECT",
  bad_credentials: "BAD_CREDENTIALS",
  logged_out: "LOGGED_OUT",
};

const profileJson = (profile: RemoteProfile | undefined): Json => ({
  ...opt("phone", profile?.phone),
  ...opt("email", profile?.email),
  ...opt("username", profile?.username),
  ...opt("name", profile?.name),
  ...opt("avatar", profile?.avatarUrl),
});

/** One of whoami's `logins`, with the deprecated flat state keys bridgev2 still sends. */
function whoamiLoginJson(login: LoginSummary): Json {
  const stateEvent = STATE_EVENTS[login.state];
  const timestamp = Math.floor(login.stateSince / 1000);
  return {
    state_event: stateEvent,
    state_ts: timestamp,
    state: { state_event: stateEvent, timestamp, ...opt("message", login.stateMessage) },
    id: login.id,
    name: login.name,
    profile: profileJson(login.profile),
  };
}

export interface WhoamiParts {
  bridge: BridgeInfo;
  flows: readonly LoginFlow[];
  managementRoom: string | undefined;
  logins: readonly LoginSummary[];
}

/** `GET /v3/whoami`: the bridge, then the caller. */
export function whoamiJson(parts: WhoamiParts): Json {
  const { bridge } = parts;
  return {
    network: {
      displayname: bridge.networkName,
      network_url: bridge.networkUrl ?? "",
      network_icon: bridge.networkIcon ?? "",
      network_id: bridge.networkId,
      beeper_bridge_type: bridge.bridgeType ?? "",
    },
    login_flows: parts.flows.map(flowJson),
    homeserver: bridge.homeserver,
    bridge_bot: bridge.botUserId,
    command_prefix: bridge.commandPrefix,
    ...opt("management_room", parts.managementRoom),
    logins: parts.logins.map(whoamiLoginJson),
  };
}

/** `resolve_identifier` and `create_dm`: `{id, name, avatar_url, mxid, dm_room_mxid}`. */
export const resolvedJson = (found: ResolvedIdentifier): Json => ({
  id: found.id,
  ...opt("name", found.name),
  ...opt("avatar_url", found.avatarUrl),
  ...opt("mxid", found.mxid),
  ...opt("dm_room_mxid", found.dmRoomId),
});
