import { backendsFor } from "../../store/backends.js";
import { inboxCases } from "../../store/inbox-cases.js";

for (const backend of backendsFor("local")) inboxCases(backend);
