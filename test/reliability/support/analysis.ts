/**
 * Pure analysis of what the record files say happened. No I/O: the tests read the files and
 * the homeserver, and hand the lines and plans in.
 *
 * Record lines (see recording-adapter.ts): `B <pid>` a process started; `K` it was then
 * SIGKILLed; `X` it stopped cleanly; `S <id>` a handler started, and how that try ended:
 * `D <id>` handled, `R <id>` failed with a RetryableError, `P <id>` failed with a
 * PermanentError (a dead letter); `S <i>`/`A <i>` a remote send was offered/accepted; `F`
 * the send plan was finished.
 */

/** One event the homeserver simulator pushed, in push order. */
export interface PlannedEvent {
  eventId: string;
  /** Which room (its index) and its position in that room's stream. */
  room: number;
  seq: number;
}

export interface DeliveryReport {
  events: number;
  /** Processes that ran (B lines) and how many of them were SIGKILLed (kills of a process
   * that had not written its B line yet are not counted here). */
  lifetimes: number;
  kills: number;
  /** ...of those, kills that landed while a room waited to retry a failed event. */
  killsWhileRetrying: number;
  /** ...and kills that landed once at least one event had failed for good (a dead letter). */
  killsWithDeadLetters: number;
  /** Handler calls (S lines). */
  deliveries: number;
  /** Tries that failed with a RetryableError (R lines), and the tries after them. */
  retryableFailures: number;
  retries: number;
  /** Events that failed with a PermanentError (P lines): they must be dead letters. */
  deadLettered: string[];
  /** Planned events neither handled (D) nor failed for good (P): must be none. */
  lost: string[];
  /** Events both handled and failed for good: must be none. */
  handledAndDead: string[];
  /** Second and later deliveries of an event, other than tries after a retryable failure. */
  duplicates: number;
  /** ...of which the earlier delivery was its room's last in a process that was then killed. */
  explainedDuplicates: number;
  /** Descriptions of duplicates outside that window: must be none. */
  unexplainedDuplicates: string[];
  /** Descriptions of events delivered out of their room's order: must be none. */
  orderViolations: string[];
  /** Delivered ids the plan does not know: must be none. */
  unknown: string[];
}

interface Lifetime {
  end: "kill" | "stop" | "running";
  /** room -> the last event id started in that room in this lifetime. */
  lastStarted: Map<number, string>;
}

type Outcome = "D" | "R" | "P" | "none";

/**
 * Checks Matrix -> adapter delivery across kills: every event handled (or, when its handler
 * failed for good, dead-lettered) at least once, in order per room, and delivered again only
 * when the process died between the handler starting and the inbox recording the event as
 * handled (the event was then its room's last started one in that process: the lanes record
 * an event before they start the room's next). A try after a retryable failure is a retry,
 * not a duplicate, in the same process or after a restart. Per room, an event starts only
 * once every earlier event of its room is over (handled or failed for good): a room waiting
 * to retry an event starts nothing after it.
 */
export function analyseDeliveries(lines: readonly string[], plan: readonly PlannedEvent[]): DeliveryReport {
  const byId = new Map(plan.map((p) => [p.eventId, p]));
  const lifetimes: Lifetime[] = [];
  const startedIn = new Map<string, number[]>(); // event id -> lifetimes it was started in
  const outcome = new Map<string, Outcome>(); // event id -> how its latest try ended
  const handled = new Set<string>();
  const dead = new Set<string>();
  const lastSeqIn = new Map<string, number>(); // "lifetime room" -> last seq started
  const firstMax = new Map<number, number>(); // room -> highest seq delivered for the first time
  const over = new Map<number, Set<number>>(); // room -> seqs handled or failed for good
  const frontier = new Map<number, number>(); // room -> lowest seq not over
  const report: DeliveryReport = {
    events: plan.length,
    lifetimes: 0,
    kills: 0,
    killsWhileRetrying: 0,
    killsWithDeadLetters: 0,
    deliveries: 0,
    retryableFailures: 0,
    retries: 0,
    deadLettered: [],
    lost: [],
    handledAndDead: [],
    duplicates: 0,
    explainedDuplicates: 0,
    unexplainedDuplicates: [],
    orderViolations: [],
    unknown: [],
  };
  const markOver = (p: PlannedEvent) => {
    let done = over.get(p.room);
    if (!done) over.set(p.room, (done = new Set()));
    done.add(p.seq);
    let f = frontier.get(p.room) ?? 0;
    while (done.has(f)) f++;
    frontier.set(p.room, f);
  };
  for (const line of lines) {
    const [kind, id = ""] = splitLine(line);
    const current = lifetimes[lifetimes.length - 1];
    if (kind === "B") lifetimes.push({ end: "running", lastStarted: new Map() });
    else if (kind === "K" || kind === "X") {
      // A second K in a row: the process was killed before it wrote its B line.
      if (!current || current.end !== "running") continue;
      current.end = kind === "K" ? "kill" : "stop";
      if (kind === "K") {
        if ([...current.lastStarted.values()].some((e) => outcome.get(e) === "R"))
          report.killsWhileRetrying++;
        if (dead.size > 0) report.killsWithDeadLetters++;
      }
    } else if (kind === "S" || kind === "D" || kind === "R" || kind === "P") {
      const planned = byId.get(id);
      if (!planned || !current) {
        report.unknown.push(`${line} (${current ? "not in the plan" : "before any process started"})`);
        continue;
      }
      if (kind !== "S") {
        outcome.set(id, kind);
        if (kind === "R") report.retryableFailures++;
        else {
          (kind === "D" ? handled : dead).add(id);
          markOver(planned);
        }
        continue;
      }
      report.deliveries++;
      const earlier = startedIn.get(id);
      const isRetry = earlier !== undefined && outcome.get(id) === "R";
      const life = lifetimes.length - 1;
      const laneKey = `${life} ${planned.room}`;
      const last = lastSeqIn.get(laneKey);
      if (last !== undefined && (planned.seq < last || (planned.seq === last && !isRetry)))
        report.orderViolations.push(
          `room ${planned.room}: ${id} (#${planned.seq}) started after #${last} in process ${life}`,
        );
      lastSeqIn.set(laneKey, planned.seq);
      const f = frontier.get(planned.room) ?? 0;
      if (planned.seq > f)
        report.orderViolations.push(
          `room ${planned.room}: ${id} (#${planned.seq}) started before #${f} was handled or dead-lettered`,
        );
      outcome.set(id, "none");
      if (earlier === undefined) {
        const max = firstMax.get(planned.room) ?? -1;
        if (planned.seq < max)
          report.orderViolations.push(
            `room ${planned.room}: ${id} (#${planned.seq}) first delivered after #${max}`,
          );
        firstMax.set(planned.room, Math.max(max, planned.seq));
        startedIn.set(id, [life]);
      } else if (isRetry) {
        report.retries++;
        earlier.push(life);
      } else {
        report.duplicates++;
        const prev = earlier[earlier.length - 1]!;
        const prevLife = lifetimes[prev]!;
        const inWindow =
          prev !== life && prevLife.end === "kill" && prevLife.lastStarted.get(planned.room) === id;
        if (inWindow) report.explainedDuplicates++;
        else
          report.unexplainedDuplicates.push(
            `${id} delivered again in process ${life}; earlier in process ${prev} (${prevLife.end}), ` +
              `where room ${planned.room}'s last started event was ${prevLife.lastStarted.get(planned.room) ?? "none"}`,
          );
        earlier.push(life);
      }
      current.lastStarted.set(planned.room, id);
    }
  }
  report.lifetimes = lifetimes.length;
  report.kills = lifetimes.filter((l) => l.end === "kill").length;
  report.deadLettered = plan.filter((p) => dead.has(p.eventId)).map((p) => p.eventId);
  report.handledAndDead = report.deadLettered.filter((id) => handled.has(id));
  report.lost = plan.filter((p) => !handled.has(p.eventId) && !dead.has(p.eventId)).map((p) => p.eventId);
  return report;
}

export interface RemoteReport {
  /** Sends offered by the adapter and accepted (resolved). */
  accepted: number;
  /** Offered but the process died before the promise resolved (may or may not arrive). */
  offeredUnresolved: number;
  /** ...of those, how many did arrive. */
  unresolvedArrived: number;
  /** Messages found on the homeserver. */
  onHomeserver: number;
  lifetimes: number;
  kills: number;
  finished: boolean;
  /** Accepted message numbers missing on the homeserver: must be none. */
  lost: number[];
  /** Message numbers the homeserver has more than once: must be none. */
  duplicated: number[];
  orderViolations: string[];
  /** Messages on the homeserver never offered, or in the wrong room: must be none. */
  unexpected: string[];
}

/**
 * Checks remote -> Matrix delivery across kills: `arrived` is, per room index, the message
 * numbers in the order the homeserver stored them; message i belongs to room i % rooms.
 */
export function analyseRemote(lines: readonly string[], arrived: readonly number[][]): RemoteReport {
  const offered = new Set<number>();
  const accepted = new Set<number>();
  let lifetimes = 0;
  let kills = 0;
  let finished = false;
  for (const line of lines) {
    const [kind, id = ""] = splitLine(line);
    if (kind === "B") lifetimes++;
    else if (kind === "K") kills++;
    else if (kind === "F") finished = true;
    else if (kind === "S") offered.add(Number(id));
    else if (kind === "A") accepted.add(Number(id));
  }
  const seen = new Map<number, number>();
  const orderViolations: string[] = [];
  const unexpected: string[] = [];
  arrived.forEach((numbers, room) => {
    let last = -1;
    for (const n of numbers) {
      seen.set(n, (seen.get(n) ?? 0) + 1);
      if (n <= last) orderViolations.push(`room ${room}: #${n} arrived after #${last}`);
      last = Math.max(last, n);
      if (n % arrived.length !== room) unexpected.push(`#${n} arrived in room ${room}`);
      if (!offered.has(n)) unexpected.push(`#${n} arrived but was never offered`);
    }
  });
  const unresolved = [...offered].filter((n) => !accepted.has(n));
  return {
    accepted: accepted.size,
    offeredUnresolved: unresolved.length,
    unresolvedArrived: unresolved.filter((n) => seen.has(n)).length,
    onHomeserver: [...seen.values()].reduce((a, b) => a + b, 0),
    lifetimes,
    kills,
    finished,
    lost: [...accepted].filter((n) => !seen.has(n)).sort((a, b) => a - b),
    duplicated: [...seen].filter(([, times]) => times > 1).map(([n]) => n),
    orderViolations,
    unexpected,
  };
}

function splitLine(line: string): [string, string | undefined] {
  const space = line.indexOf(" ");
  return space < 0 ? [line, undefined] : [line.slice(0, space), line.slice(space + 1)];
}
