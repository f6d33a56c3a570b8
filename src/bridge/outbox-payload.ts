/**
 * What the outbox stores for each remote -> Matrix action, one JSON object per action.
 * Remote ids, not Matrix ids: targets are resolved at delivery, after the actions ahead of
 * them in the same room (the message an edit targets, say) were delivered.
 */
import type { MessageContent, PortalSpec, RemoteProfile } from "../adapter/adapter.js";
import type { SpooledMedia } from "../media/media-content.js";

/** The stored message: its content without the attachment, and the attachment's spooled file. */
interface Message {
  /** Never has `attachment`: the file is in `media`. */
  content: MessageContent;
  media?: SpooledMedia;
}

interface Base {
  /** The remote room; the outbox's per-room order is per portal (portalKey). */
  room: string;
  /** The remote user acting; absent where the bot acts. */
  from?: string;
  ts?: number;
  /** The login whose session sent it (SessionContext); absent for the adapter's own sends. */
  login?: string;
  /** Set when it goes to that login's DM portal of `room`, not the shared portal. */
  dm?: true;
  /** History (src/backfill), queued ahead of the room's live actions. */
  backfill?: true;
}

export type OutboxAction =
  | (Base &
      Message & {
        op: "send";
        remoteId?: string;
        externalUrl?: string;
        replyTo?: string;
        /** The remote id of the thread's root. */
        thread?: string;
      })
  | (Base & Message & { op: "edit"; target: string; remoteId?: string; externalUrl?: string })
  | (Base & { op: "redact"; target: string; reason?: string })
  | (Base & { op: "react"; target: string; key: string; remoteId?: string })
  | (Base & { op: "join" })
  | (Base & { op: "leave"; reason?: string })
  | (Base & { op: "roomInfo"; info: Pick<PortalSpec, "name" | "topic" | "avatarUrl"> });

/** A ghost profile change; queued per remote user in an outbox of its own (it has no room). */
export interface ProfileAction {
  user: string;
  profile: RemoteProfile;
}
