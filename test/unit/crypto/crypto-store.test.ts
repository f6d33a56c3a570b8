// The durable crypto store on the embedded backends (memory, sqlite); the SIGKILL test and
// PostgreSQL and Redis run in the store suite (test/store/crypto-store.test.ts).
import { BACKENDS } from "../../store/backends.js";
import { cryptoStoreCases } from "../../store/crypto-store-cases.js";

for (const backend of BACKENDS.filter((b) => b.name === "memory" || b.name === "sqlite"))
  cryptoStoreCases(backend, { crash: false });
