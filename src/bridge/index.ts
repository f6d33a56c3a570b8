export { Bridge, type BridgeOptions, type BridgeParts } from "./bridge.js";
export { classifyEvent, stripReplyFallback, type Classified } from "./matrix-to-adapter.js";
export { messageContent, editContent, reactionContent } from "./adapter-to-matrix.js";
