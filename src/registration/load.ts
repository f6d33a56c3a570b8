import { readYamlFile, writeYamlFile } from "../common/yaml-file.js";
import type { Registration } from "./types.js";
import { parseRegistration } from "./validate.js";

/**
 * Loads and validates a registration file. Throws ValidationError naming the file, each
 * key path and what was wrong with it (all problems at once). Unknown keys are kept.
 */
export async function loadRegistration(path: string): Promise<Registration> {
  return parseRegistration(await readYamlFile(path), path);
}

/**
 * Saves a registration file with mode 0600 (it holds both tokens), atomically. Keys the
 * framework does not know are written back as they were loaded.
 */
export async function saveRegistration(path: string, registration: Registration): Promise<void> {
  parseRegistration(structuredClone(registration), "registration to save");
  await writeYamlFile(path, registration, 0o600);
}
