/**
 * Shared by the e2e suites of per-user logins on Synapse (test/e2e/logins.test.ts,
 * test/e2e/logins-double-puppet.test.ts): an in-process Bridge's debug log kept in memory,
 * and the waits those suites make through real Matrix users (an event seen in a room, the
 * bot's notice answering a command, a message reaching the fake network).
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../../src/common/logger.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import { generateRegistration, type Registration } from "../../../src/registration/index.js";
import type { FakeNetwork, Sent } from "../../support/fake-network.js";
import { describeEvent, poll, type MatrixUser } from "./matrix-user.js";

/** A debug logger whose lines are kept, for failure messages and "never logged" checks. */
export function capturedLog(): { logger: Logger; lines: string[]; tail: () => string } {
  const lines: string[] = [];
  const logger = createLogger(
    { level: "debug", name: "bridgekit" },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    }),
  );
  return { logger, lines, tail: () => `--- bridge log (last 25 lines) ---\n${lines.slice(-25).join("\n")}` };
}

/** A direct room `user` creates inviting `invitee`, as Matrix clients start a DM. */
export async function createDirectRoom(user: MatrixUser, invitee: string): Promise<string> {
  const r = await user.request<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {
    preset: "trusted_private_chat",
    is_direct: true,
    invite: [invitee],
  });
  return r.room_id;
}

/** The waits of a logins suite, for a bridge whose bot is `botUserId` on `network`. */
export function loginsWaits(o: { network: FakeNetwork; botUserId: string; logTail: () => string }) {
  const { network, botUserId, logTail } = o;

  /** Waits until the remote network records a send that matches. */
  const sentMatching = (what: string, match: (s: Sent) => boolean) =>
    poll(
      () => Promise.resolve(network.sent.find(match)),
      () => `the network saw no ${what}; last: ${JSON.stringify(network.sent.slice(-6))}\n${logTail()}`,
      15_000,
      50,
    );

  /** `user` says `text` in `roomId`; the network must record it sent by `as` in `remoteRoom`. */
  async function reaches(user: MatrixUser, roomId: string, text: string, as: string, remoteRoom: string) {
    await user.send(roomId, text);
    assert.deepEqual(await sentMatching(JSON.stringify(text), (s) => s.text === text), {
      as,
      room: remoteRoom,
      text,
    });
  }

  /** Waits until `user` sees, in `roomId`, an event after `afterEventId` (or anywhere) that matches. */
  function seen(
    user: MatrixUser,
    roomId: string,
    match: (e: MatrixEvent) => boolean,
    what: string,
    afterEventId?: string,
  ): Promise<MatrixEvent> {
    let last: MatrixEvent[] = [];
    return poll(
      async () => {
        last = await user.timeline(roomId, 100);
        const from = afterEventId === undefined ? 0 : last.findIndex((e) => e.event_id === afterEventId) + 1;
        if (afterEventId !== undefined && from === 0) return undefined;
        return last.slice(from).find(match);
      },
      () =>
        `${user.userId} saw no ${what} in ${roomId}; last events:\n  ${last
          .slice(-10)
          .map(describeEvent)
          .join("\n  ")}\n${logTail()}`,
    );
  }

  const isNotice = (e: MatrixEvent) =>
    e.sender === botUserId && e.type === "m.room.message" && e.content.msgtype === "m.notice";

  /** The bot's next notice in `roomId` after `eventId` whose body matches. */
  const noticeAfter = (user: MatrixUser, roomId: string, eventId: string, body: RegExp | string) =>
    seen(
      user,
      roomId,
      (e) =>
        isNotice(e) &&
        (typeof body === "string" ? e.content.body === body : body.test(String(e.content.body))),
      `bot notice ${String(body)}`,
      eventId,
    );

  /** Sends `body` and waits for the bot's notice answering it. */
  async function ask(user: MatrixUser, roomId: string, body: string, answer: RegExp | string) {
    const eventId = await user.send(roomId, body);
    return { eventId, notice: await noticeAfter(user, roomId, eventId, answer) };
  }

  /** Waits until `user` sees every one of `members` joined to `roomId`. */
  const joined = (user: MatrixUser, roomId: string, members: string[]) =>
    poll(
      async () => {
        const now = await user.joinedMembers(roomId);
        return members.every((m) => now.includes(m)) ? now : undefined;
      },
      () => `${members.join(", ")} did not all join ${roomId}\n${logTail()}`,
    );

  /**
   * Waits until the event `eventId` is redacted (by the bot) as `user` sees it; returns it.
   * Its content must then be empty: what it carried is gone.
   */
  async function redacted(user: MatrixUser, roomId: string, eventId: string, what: string) {
    const e = await poll(
      async () => {
        const e = await user.request<MatrixEvent & { unsigned?: Record<string, unknown> }>(
          "GET",
          `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
        );
        return e.unsigned?.redacted_because !== undefined ? e : undefined;
      },
      () => `the message with ${what} (${eventId}) was not redacted\n${logTail()}`,
    );
    assert.deepEqual(e.content, {}, `${what} is gone from the event`);
    assert.equal((e.unsigned!.redacted_because as MatrixEvent).sender, botUserId);
    return e;
  }

  return { sentMatching, reaches, seen, isNotice, noticeAfter, ask, joined, redacted };
}

/** The registration of a logins bridge with the fake network's ghosts and portals (`fake_{id}`). */
export function loginsRegistration(id: string, port: number, domain: string): Registration {
  return generateRegistration({
    id,
    url: `http://127.0.0.1:${port}`,
    domain,
    senderLocalpart: "fakebot",
    ghosts: "fake_{id}",
    portals: "fake_{id}",
  });
}

/**
 * The config of an in-process logins bridge (the fake network's adapter is handed to
 * Bridge.fromConfig, so adapter.module is never loaded), with `extra` lines appended.
 */
export function loginsConfigYaml(o: {
  homeserverUrl: string;
  domain: string;
  port: number;
  store: string;
  encryptionKey: string;
  extra?: string[];
}): string {
  return [
    `homeserver: { url: "${o.homeserverUrl}", domain: ${o.domain} }`,
    `appservice: { host: 127.0.0.1, port: ${o.port} }`,
    `store: ${o.store}`,
    "bridge: { ghosts: 'fake_{id}', portals: 'fake_{id}' }",
    "inbox: { retry: { firstDelayMs: 200, maxDelayMs: 1000 } }",
    `logins: { encryptionKey: "${o.encryptionKey}" }`,
    'adapter: { module: "./fake-network-in-process" }',
    "client: { retryAttempts: 4, maxBackoffMs: 500 }",
    ...(o.extra ?? []),
  ].join("\n");
}
