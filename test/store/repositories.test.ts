// The contract-critical repositories (Outbox, MessageMap, the inbox and its dead letters,
// users and their logins) on PostgreSQL and Redis.
import { BACKENDS } from "./backends.js";
import { inboxCases } from "./inbox-cases.js";
import { messageMapCases, outboxCases } from "./repository-cases.js";
import { userStoreCases } from "./users-cases.js";

for (const backend of BACKENDS.filter((b) => b.name === "postgres" || b.name === "redis")) {
  outboxCases(backend);
  messageMapCases(backend);
  inboxCases(backend);
  userStoreCases(backend);
}
