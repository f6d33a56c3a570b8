export { RetryableError, PermanentError, UnsupportedError, failureKind, type FailureKind } from "./errors.js";
export { DEFAULT_INBOX_RETRY, inboxRetryPolicy, nextTry, type InboxRetryPolicy } from "./retry-policy.js";
export { Inbox, DEFAULT_INBOX_OPTIONS, WITHHELD_KEY, type InboxOptions, type InboxItem } from "./inbox.js";
export {
  DeadLetters,
  type DeadLetter,
  type DeadLetterReason,
  type DeadLettersOptions,
} from "./dead-letters.js";
