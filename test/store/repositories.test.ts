// The contract-critical repositories (Outbox, MessageMap, the inbox and its dead letters) on
// PostgreSQL and Redis.
import { BACKENDS } from "./backends.js";
import { inboxCases } from "./inbox-cases.js";
import { messageMapCases, outboxCases } from "./repository-cases.js";

for (const backend of BACKENDS.filter((b) => b.name === "postgres" || b.name === "redis")) {
  outboxCases(backend);
  messageMapCases(backend);
  inboxCases(backend);
}
