export { MediaTooLargeError, MediaFetchError, MediaDecryptionError } from "./errors.js";
export { sniffMimetype } from "./sniff.js";
export { imageDimensions, type Dimensions } from "./dimensions.js";
export { msgtypeFor } from "./media-content.js";
export { decryptAttachment, attachmentKeys, type AttachmentKeys } from "./decrypt.js";
export { matrixFileOf, FILE_MSGTYPES } from "./matrix-file.js";
export { DEFAULT_MEDIA_MAX_BYTES, parseMxc, type MediaSource, type OpenMediaOptions } from "./open-media.js";
export { readAll } from "./size-cap.js";
