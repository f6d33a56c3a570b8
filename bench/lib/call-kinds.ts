/** Names a client-server API request by what it does, for per-message call counts. Pure. */
export function callKind(method: string, path: string): string {
  if (path.endsWith("/register")) return "register";
  if (/\/join(\/|$)/.test(path) || /\/rooms\/[^/]+\/join$/.test(path)) return "join";
  if (/\/send\//.test(path)) return "send";
  if (path.endsWith("/createRoom")) return "createRoom";
  if (/\/state\//.test(path)) return method === "GET" ? "getState" : "setState";
  if (/\/profile\//.test(path)) return "profile";
  return `${method} ${path.replace(/![^/]+/g, "{room}").replace(/@[^/]+/g, "{user}")}`;
}
