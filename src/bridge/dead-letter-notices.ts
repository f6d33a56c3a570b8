import { LRUCache } from "lru-cache";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import type { DeadLetter } from "../inbox/dead-letters.js";
import type { Portals } from "./portals.js";

export interface DeadLetterNoticesOptions {
  client: HomeserverClient;
  portals: Portals;
  log: Logger;
  /** Tell the sender when the adapter cannot carry what they did (config bridge.unsupportedNotice). */
  unsupported: boolean;
  /** Tell the sender when their event failed for good (config inbox.deadLetterNotice). */
  failed: boolean;
}

/**
 * Tells the sender, in the room, that their event was not bridged: an m.notice from the bot
 * replying to the event and mentioning them ("not bridged: <reason>"). Only in portals.
 * "Cannot carry edits" is said once per room and kind (not on every edit); other failures
 * each get their notice. The reason is the error's user message, never a stack trace.
 */
export class DeadLetterNotices {
  /** Rooms and reasons an "unsupported" notice was sent for. */
  private readonly told = new LRUCache<string, true>({ max: 10_000 });

  constructor(private readonly o: DeadLetterNoticesOptions) {}

  async deadLetter(letter: DeadLetter): Promise<void> {
    if (letter.item.kind !== "event") return;
    const event = letter.item.event;
    if (!(letter.reason === "unsupported" ? this.o.unsupported : this.o.failed)) return;
    if (letter.reason === "unsupported") {
      const key = `${event.room_id} ${letter.userMessage}`;
      if (this.told.has(key)) return;
      this.told.set(key, true);
    }
    const portal = await this.o.portals.byRoomId(event.room_id);
    if (!portal) return;
    const bot = this.o.client.intent(this.o.client.botUserId);
    await bot.sendMessage(portal.roomId, {
      msgtype: "m.notice",
      body: `not bridged: ${letter.userMessage}`,
      "m.relates_to": { "m.in_reply_to": { event_id: event.event_id } },
      "m.mentions": { user_ids: [event.sender] },
    });
    this.o.log.info(
      { eventId: event.event_id, roomId: event.room_id, reason: letter.reason },
      "sender told their event was not bridged",
    );
  }
}
