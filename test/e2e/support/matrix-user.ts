/**
 * End-to-end test support shared by the bridges' e2e tests: a normal Matrix user that speaks the
 * client-server API with plain fetch, polling with a described timeout, and calls to a bridge's
 * appservice API made the way the homeserver makes them.
 */
import type { MatrixEvent } from "../../../src/matrix/events.js";

/** Polls `check` every `intervalMs` until it returns a value other than undefined; throws `describe()` on timeout. */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  describe: () => string,
  timeoutMs = 15_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A Matrix error answer, naming the request that caused it (never the access token). */
export class ClientApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: ${status} ${JSON.stringify(body)}`);
  }
}

/** The one-line summary of an event used in failure messages. */
export function describeEvent(e: MatrixEvent): string {
  return `${e.event_id} ${e.type} ${e.sender}${e.state_key !== undefined ? ` [${e.state_key}]` : ""} ${JSON.stringify(e.content)}`;
}

/** A normal (non-appservice) Matrix user, talking to the homeserver with plain fetch. */
export class MatrixUser {
  private txn = 0;

  constructor(
    readonly baseUrl: string,
    readonly userId: string,
    private readonly accessToken: string,
  ) {}

  /** One client-server call; throws ClientApiError (naming method and path) unless 2xx. */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.accessToken}`,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text for the error message
    }
    if (!res.ok) throw new ClientApiError(res.status, parsed, `${this.userId} ${method} ${path}`);
    return parsed as T;
  }

  async setDisplayName(name: string): Promise<void> {
    await this.request("PUT", `/_matrix/client/v3/profile/${encodeURIComponent(this.userId)}/displayname`, {
      displayname: name,
    });
  }

  /** Joins a room by id or alias; resolves with the room id. */
  async join(roomIdOrAlias: string): Promise<string> {
    const r = await this.request<{ room_id: string }>(
      "POST",
      `/_matrix/client/v3/join/${encodeURIComponent(roomIdOrAlias)}`,
      {},
    );
    return r.room_id;
  }

  /** Sends an m.room.message with this content; resolves with the event id. */
  async sendContent(roomId: string, content: Record<string, unknown>): Promise<string> {
    const txnId = `e2e-${process.pid}-${Date.now()}-${++this.txn}`;
    const r = await this.request<{ event_id: string }>(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txnId}`,
      content,
    );
    return r.event_id;
  }

  /** Sends a plain message; resolves with the event id. */
  /** Uploads `data` (media API) and sends it as an m.file named `name`; returns the event id. */
  async sendFile(roomId: string, data: Uint8Array, name: string, contentType: string): Promise<string> {
    const res = await fetch(`${this.baseUrl}/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.accessToken}`, "Content-Type": contentType },
      body: data,
      signal: AbortSignal.timeout(30_000),
    });
    const json = (await res.json()) as { content_uri?: string };
    if (!res.ok || typeof json.content_uri !== "string")
      throw new Error(`upload of ${name}: ${res.status} ${JSON.stringify(json)}`);
    return this.sendContent(roomId, {
      msgtype: "m.file",
      body: name,
      url: json.content_uri,
      info: { mimetype: contentType, size: data.byteLength },
    });
  }

  send(roomId: string, body: string, msgtype = "m.text"): Promise<string> {
    return this.sendContent(roomId, { msgtype, body });
  }

  /** Edits `eventId` (an m.replace relation, as clients send it); resolves with the edit's event id. */
  edit(roomId: string, eventId: string, newBody: string): Promise<string> {
    return this.sendContent(roomId, {
      msgtype: "m.text",
      body: `* ${newBody}`,
      "m.new_content": { msgtype: "m.text", body: newBody },
      "m.relates_to": { rel_type: "m.replace", event_id: eventId },
    });
  }

  async setTopic(roomId: string, topic: string): Promise<string> {
    const r = await this.request<{ event_id: string }>(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic/`,
      { topic },
    );
    return r.event_id;
  }

  /** A state event's content, or undefined when the room has none of that type and key. */
  async state(roomId: string, type: string, stateKey = ""): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.request(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${encodeURIComponent(type)}/${encodeURIComponent(stateKey)}`,
      );
    } catch (err) {
      if (err instanceof ClientApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** The room's joined members (user ids). */
  async joinedMembers(roomId: string): Promise<string[]> {
    const r = await this.request<{ joined: Record<string, unknown> }>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`,
    );
    return Object.keys(r.joined);
  }

  /** The room's latest timeline events (up to `limit`), oldest first. */
  async timeline(roomId: string, limit = 500): Promise<MatrixEvent[]> {
    const r = await this.request<{ chunk: MatrixEvent[] }>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=${limit}`,
    );
    return r.chunk.reverse();
  }

  /** Waits until the timeline holds an event matching `predicate`; returns the first such event. */
  async waitForEvent(
    roomId: string,
    predicate: (e: MatrixEvent) => boolean,
    what: string,
    timeoutMs = 15_000,
  ): Promise<MatrixEvent> {
    let last: MatrixEvent[] = [];
    return poll(
      async () => {
        last = await this.timeline(roomId);
        return last.find(predicate);
      },
      () => `no ${what} in ${roomId}; last events:\n  ${last.slice(-12).map(describeEvent).join("\n  ")}`,
      timeoutMs,
    );
  }
}

/**
 * A GET on the bridge's appservice API as the homeserver sends it (with the hs_token, unless
 * `hsToken` is null). Resolves with the status and the parsed JSON body.
 */
export async function appserviceGet(
  port: number,
  hsToken: string | null,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: hsToken === null ? {} : { Authorization: `Bearer ${hsToken}` },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`appservice GET ${path} answered ${res.status} with a body that is not JSON: ${text}`);
  }
  return { status: res.status, body };
}

/**
 * Pushes one transaction to the bridge's appservice API with the hs_token, as the homeserver
 * does. Resolves with the status and the body's text.
 */
export async function appservicePushTransaction(
  port: number,
  hsToken: string,
  txnId: string,
  events: object[],
): Promise<{ status: number; text: string }> {
  const res = await fetch(
    `http://127.0.0.1:${port}/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`,
    {
      method: "PUT",
      headers: { Authorization: `Bearer ${hsToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(60_000),
    },
  );
  return { status: res.status, text: await res.text() };
}

/** Resolves once something accepts TCP-level HTTP on `port` (any answer from /health). */
export async function waitForListener(port: number, timeoutMs = 30_000): Promise<void> {
  await poll(
    async () => {
      try {
        await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
        return true;
      } catch {
        return undefined;
      }
    },
    () => `nothing listens on 127.0.0.1:${port}`,
    timeoutMs,
    50,
  );
}

/** GETs `url` with no token at all, as anyone holding a link would; the bytes, or throws unless 200. */
export async function downloadWithoutToken(url: string): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body.toString("utf8").slice(0, 200)}`);
  return body;
}
