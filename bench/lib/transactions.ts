/** Transaction bodies shaped like the ones Synapse pushes. Pure; no I/O. */

export const BENCH_DOMAIN = "example.org";

/** The Matrix room id of bench room `i` (the portals the bridgekit server seeds use the same). */
export function benchRoomId(i: number): string {
  return `!benchroom${i}:${BENCH_DOMAIN}`;
}

/**
 * The JSON body of one transaction: `batch` m.room.message events from a (non-ghost) Matrix
 * user, spread round-robin over `rooms` rooms starting where the previous transaction
 * stopped (`seq * batch`), each with an event id unique to `runId` and `seq`.
 */
export function transactionBody(runId: string, seq: number, batch: number, rooms: number): string {
  const events = [];
  const now = Date.now();
  for (let i = 0; i < batch; i++) {
    const n = seq * batch + i;
    events.push({
      type: "m.room.message",
      event_id: `$${runId}-${seq}-${i}`,
      room_id: benchRoomId(n % rooms),
      sender: `@alice:${BENCH_DOMAIN}`,
      origin_server_ts: now,
      content: { msgtype: "m.text", body: `benchmark message ${n}` },
      unsigned: { age: 12 },
    });
  }
  return JSON.stringify({ events });
}
