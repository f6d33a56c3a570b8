export { SecretBox, isSealed, type SealedValue } from "./secret-box.js";
export {
  UserStore,
  UnreadableSecretError,
  type UserRecord,
  type LoginRecord,
  type LoginSummary,
  type NewLogin,
} from "./user-store.js";
