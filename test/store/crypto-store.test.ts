// The durable crypto store on sqlite, PostgreSQL and Redis, with the SIGKILL test (memory
// and sqlite without it: test/unit/crypto).
import { BACKENDS } from "./backends.js";
import { cryptoStoreCases } from "./crypto-store-cases.js";

for (const backend of BACKENDS.filter((b) => b.name !== "memory")) cryptoStoreCases(backend, { crash: true });
