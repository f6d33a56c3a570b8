/**
 * The Matrix -> bridge traffic of the crash tests: transactions of 1-10 events over several
 * portal rooms, mostly messages, some topic changes and member joins (each kind reaches a
 * different adapter handler), every event with a unique id and a known place in its room's
 * stream.
 */
import type { PlannedEvent } from "./analysis.js";
import type { Random } from "./random.js";

export interface PlannedTransaction {
  txnId: string;
  events: Array<Record<string, unknown>>;
}

export function matrixPlan(opts: {
  label: string;
  roomIds: readonly string[];
  transactions: number;
  maxEventsPerTxn: number;
  random: Random;
  domain: string;
}): { transactions: PlannedTransaction[]; events: PlannedEvent[] } {
  const { random, roomIds, domain } = opts;
  const seqs = roomIds.map(() => 0);
  const transactions: PlannedTransaction[] = [];
  const events: PlannedEvent[] = [];
  const base = 1_700_000_000_000;
  for (let t = 0; t < opts.transactions; t++) {
    const txnId = `${opts.label}-${t}`;
    const list: Array<Record<string, unknown>> = [];
    const n = random.int(1, opts.maxEventsPerTxn);
    for (let i = 0; i < n; i++) {
      const room = random.int(0, roomIds.length - 1);
      const seq = seqs[room]!++;
      const eventId = `$${txnId}-${i}:${domain}`;
      const roll = random.next();
      const common = { event_id: eventId, room_id: roomIds[room]!, origin_server_ts: base + t * 100 + i };
      if (roll < 0.85) {
        list.push({
          ...common,
          type: "m.room.message",
          sender: `@alice:${domain}`,
          content: { msgtype: "m.text", body: `room ${room} #${seq}` },
        });
      } else if (roll < 0.95) {
        list.push({
          ...common,
          type: "m.room.topic",
          sender: `@alice:${domain}`,
          state_key: "",
          content: { topic: `topic ${room} #${seq}` },
        });
      } else {
        const user = `@user${random.int(0, 20)}:${domain}`;
        list.push({
          ...common,
          type: "m.room.member",
          sender: user,
          state_key: user,
          content: { membership: "join", displayname: `User ${seq}` },
        });
      }
      events.push({ eventId, room, seq });
    }
    transactions.push({ txnId, events: list });
  }
  return { transactions, events };
}
