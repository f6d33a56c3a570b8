import { backendsFor } from "../../store/backends.js";
import { leaseCases } from "../../store/lease-cases.js";

for (const backend of backendsFor("local")) leaseCases(backend);
