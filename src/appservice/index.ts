export {
  createAppservice,
  type Appservice,
  type AppserviceOptions,
  type ListenResult,
  type ReadinessCheck,
  type ReadinessResult,
} from "./app.js";
export type {
  AppserviceHandlers,
  HandlerContext,
  TransactionContext,
  DeviceKeyCounts,
  ThirdPartyHandlers,
} from "./handlers.js";
export { MatrixHttpError, HandlerTimeoutError, TransactionFailedError } from "./errors.js";
export { parseTransactionBody, type ParsedTransaction } from "./transaction-body.js";
export { DEFAULT_BODY_LIMIT_BYTES } from "./body.js";
