export type { Registration, Namespaces, NamespaceEntry, NamespaceKind } from "./types.js";
export { validateRegistration, parseRegistration } from "./validate.js";
export { loadRegistration, saveRegistration } from "./load.js";
export {
  generateRegistration,
  generateDoublePuppetRegistration,
  generateToken,
  ENCRYPTION_REGISTRATION_KEYS,
  type GenerateRegistrationOptions,
  type GenerateDoublePuppetOptions,
} from "./generate.js";
export {
  checkDoublePuppetRegistration,
  localUsersRegexSource,
  type DoublePuppetCheckOptions,
} from "./double-puppet.js";
export { NamespaceMatcher, type InterestEvent } from "./namespaces.js";
export { escapeLocalpart, unescapeLocalpart, IdTemplate, MAX_MATRIX_ID_LENGTH } from "./localpart.js";
export { compileNamespaceRegex, translatePythonRegex } from "./regex.js";
