export { MediaTooLargeError, MediaFetchError } from "./errors.js";
export { sniffMimetype } from "./sniff.js";
export { imageDimensions, type Dimensions } from "./dimensions.js";
export { msgtypeFor } from "./media-content.js";
