export { HomeserverClient, type HomeserverClientOptions } from "./homeserver-client.js";
export { Intent } from "./intent.js";
export { INTENT_STORE_NAMESPACE } from "./intent-state.js";
export {
  MatrixError,
  HomeserverUnreachableError,
  UserNotInNamespaceError,
  ResponseTooLargeError,
} from "./matrix-error.js";
export {
  DEFAULT_RETRY_POLICY,
  backoffDelay,
  rateLimitDelay,
  resolveRetryPolicy,
  type RetryPolicy,
} from "./retry.js";
export type * from "./types.js";
