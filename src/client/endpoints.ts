/**
 * Names the endpoint of a client-server API path with its ids replaced by placeholders, for
 * metrics: `/_matrix/client/v3/rooms/!a%3Ab/send/m.room.message/t1` is
 * `/rooms/{roomId}/send/{type}/{txnId}`. Never a raw id, so the label set stays small.
 */

/** Every path ServerEndpoints and RoomEndpoints call, `{name}` standing for one path segment. */
const TEMPLATES = [
  "/_matrix/client/versions",
  "/_matrix/client/v1/appservice/{appserviceId}/ping",
  "/_matrix/client/v1/media/download/{serverName}/{mediaId}",
  "/_matrix/media/v3/upload",
  "/_matrix/client/v3/account/whoami",
  "/_matrix/client/v3/devices/{deviceId}",
  "/_matrix/client/v3/keys/upload",
  "/_matrix/client/v3/keys/query",
  "/_matrix/client/v3/keys/claim",
  "/_matrix/client/v3/keys/signatures/upload",
  "/_matrix/client/v3/keys/device_signing/upload",
  "/_matrix/client/v3/sendToDevice/{type}/{txnId}",
  "/_matrix/client/v3/register",
  "/_matrix/client/v3/createRoom",
  "/_matrix/client/v3/join/{roomIdOrAlias}",
  "/_matrix/client/v3/profile/{userId}",
  "/_matrix/client/v3/profile/{userId}/displayname",
  "/_matrix/client/v3/profile/{userId}/avatar_url",
  "/_matrix/client/v3/presence/{userId}/status",
  "/_matrix/client/v3/directory/room/{roomAlias}",
  "/_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}",
  "/_matrix/client/v3/rooms/{roomId}/send/{type}/{txnId}",
  "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}",
  "/_matrix/client/v3/rooms/{roomId}/state",
  "/_matrix/client/v3/rooms/{roomId}/state/{type}/{stateKey}",
  "/_matrix/client/v3/rooms/{roomId}/typing/{userId}",
  "/_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}",
  ...["leave", "invite", "kick", "ban", "unban"].map(
    (action) => `/_matrix/client/v3/rooms/{roomId}/${action}`,
  ),
];

interface Template {
  segments: Array<string | null>; // null: a placeholder
  label: string;
}

const COMPILED: Template[] = TEMPLATES.map((t) => ({
  segments: t.split("/").map((s) => (s.startsWith("{") ? null : s)),
  // The client-server prefix is the same for nearly all; the rest tells them apart.
  label: t.replace(/^\/_matrix\/client\/(?:v\d+\/)?/, "/"),
}));

/** The endpoint label of a request path (no query string); "other" for a path not listed. */
export function endpointOf(path: string): string {
  const segments = path.split("/");
  for (const t of COMPILED) {
    if (t.segments.length !== segments.length) continue;
    if (t.segments.every((s, i) => s === null || s === segments[i])) return t.label;
  }
  return "other";
}
