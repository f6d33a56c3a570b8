export { SecretBox, isSealed, type SealedValue } from "./secret-box.js";
export { UserStore, type UserRecord, type LoginRecord, type NewLogin } from "./user-store.js";
