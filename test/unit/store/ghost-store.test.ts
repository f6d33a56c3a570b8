// ghostStore on memory and sqlite (the store suite also runs the contract-critical ones on PostgreSQL and Redis).
import { backendsFor } from "../../store/backends.js";
import { ghostStoreCases } from "../../store/repository-cases.js";

for (const backend of backendsFor("local")) ghostStoreCases(backend);
