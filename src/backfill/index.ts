export { Backfill, type BackfillOptions } from "./backfill.js";
export { HistoryStore, type BackfillTask } from "./history-store.js";
export { selectHistory, historyMessageProblem, type Selected } from "./select.js";
