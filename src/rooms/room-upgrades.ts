/**
 * Room upgrades: a portal follows its room's tombstone (`m.room.tombstone`, sent when someone
 * upgrades the room) to the replacement room. The bot joins it (through the tombstone
 * sender's server), checks that its `m.room.create` names the old room as its predecessor,
 * and the portal's mapping moves there (relay, alias, metadata kept). From then on
 * everything of that remote room goes to the new room, what was already queued included (the
 * outbox is kept per remote room and resolves the Matrix room at delivery); ghosts join it
 * the first time they act. The new room gets the bridge info, the old one a notice pointing
 * to the new one, and the bot leaves it.
 */
import type { Portal } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import type { Logger } from "../common/logger.js";
import { noticeContent } from "../commands/notice.js";
import { PermanentError } from "../inbox/errors.js";
import { serverName, type MatrixEvent } from "../matrix/events.js";
import type { BridgeInfo } from "./bridge-info.js";

/** What room upgrades need of the portals. */
export interface MovablePortals {
  byRoomId(roomId: string): Promise<Portal | null>;
  move(portal: Portal, roomId: string): Promise<Portal>;
}

export interface RoomUpgradesOptions {
  client: HomeserverClient;
  portals: MovablePortals;
  bridgeInfo?: BridgeInfo;
  log: Logger;
  /** Called once a portal moved (e.g. to put the new room in a space). Failures are logged. */
  onMoved?: (before: Portal, after: Portal) => Promise<void>;
}

/** The replacement room a tombstone names, or undefined. Pure. */
export function replacementRoom(event: MatrixEvent): string | undefined {
  const next = event.content.replacement_room;
  return typeof next === "string" && next.startsWith("!") ? next : undefined;
}

export class RoomUpgrades {
  constructor(private readonly o: RoomUpgradesOptions) {}

  /**
   * Follows `tombstone`, an event in `portal`'s room. A tombstone without a replacement room
   * is ignored (the portal stays); a replacement the bot cannot join, or that does not name
   * the old room as its predecessor, throws a PermanentError (the sender is told; the dead
   * letter can be retried once the bot is invited). What follows the move is best effort.
   */
  async follow(portal: Portal, tombstone: MatrixEvent): Promise<void> {
    const next = replacementRoom(tombstone);
    const log = this.o.log.child({ remoteId: portal.remoteId, oldRoomId: portal.roomId, roomId: next });
    if (next === undefined || next === portal.roomId) {
      log.info("tombstone without a replacement room; the portal stays");
      return;
    }
    const linked = await this.o.portals.byRoomId(next);
    if (linked) throw new PermanentError(`the replacement room ${next} is already a portal`);
    const bot = this.o.client.intent(this.o.client.botUserId);
    try {
      await bot.join(next, [serverName(tombstone.sender)]);
    } catch (err) {
      if (!(err instanceof MatrixError) || err.status >= 500 || err.status === 429) throw err;
      throw new PermanentError(
        `the bridge could not join the upgraded room ${next} (${err.errcode ?? err.status}): invite ${bot.userId} there`,
        { cause: err },
      );
    }
    const create = await bot.getStateEvent(next, "m.room.create");
    const predecessor = (create?.predecessor as { room_id?: unknown } | undefined)?.room_id;
    if (predecessor !== portal.roomId) {
      await bot.leave(next, "this room does not replace the portal").catch((err: unknown) => {
        log.warn({ err }, "could not leave a room that does not replace the portal");
      });
      throw new PermanentError(
        `the room ${next} is not the upgrade of this room (its predecessor is not this room)`,
      );
    }
    const moved = await this.o.portals.move(portal, next);
    log.info("portal followed its room's upgrade");
    await this.settle(portal, moved, log);
  }

  /** After the move: the bridge info, the space, a notice in the old room, the bot leaving it. */
  private async settle(before: Portal, after: Portal, log: Logger): Promise<void> {
    const bot = this.o.client.intent(this.o.client.botUserId);
    const steps: Array<[string, () => Promise<unknown>]> = [
      [
        "set the bridge info in the new room",
        async () => this.o.bridgeInfo?.refresh(after.roomId, after.remoteId),
      ],
      ["finish the move", async () => this.o.onMoved?.(before, after)],
      [
        "leave a notice in the old room",
        () =>
          bot.sendMessage(
            before.roomId,
            noticeContent(
              `This room was upgraded: the bridge goes on in https://matrix.to/#/${encodeURIComponent(after.roomId)}`,
            ),
          ),
      ],
      ["leave the old room", () => bot.leave(before.roomId, "the room was upgraded")],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        log.warn({ err }, `after a room upgrade, could not ${what}`);
      }
    }
  }
}
