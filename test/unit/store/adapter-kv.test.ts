// adapterKv on memory and sqlite (the store suite also runs the contract-critical ones on PostgreSQL and Redis).
import { backendsFor } from "../../store/backends.js";
import { adapterKvCases } from "../../store/repository-cases.js";

for (const backend of backendsFor("local")) adapterKvCases(backend);
