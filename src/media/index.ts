export { MediaTooLargeError, MediaDecryptionError } from "./errors.js";
export { decryptAttachment, attachmentKeys, type AttachmentKeys } from "./decrypt.js";
export { matrixFileOf, FILE_MSGTYPES } from "./matrix-file.js";
export { DEFAULT_MEDIA_MAX_BYTES, parseMxc, type MediaSource, type OpenMediaOptions } from "./open-media.js";
export { readAll } from "./size-cap.js";
