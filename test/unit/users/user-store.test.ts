// UserStore on memory and sqlite (the store suite runs the same cases on PostgreSQL and Redis).
import { backendsFor } from "../../store/backends.js";
import { userStoreCases } from "../../store/users-cases.js";

for (const backend of backendsFor("local")) userStoreCases(backend);
