// What an adapter needs between its remote connection and the BridgeContext, whatever the network.
export { OrderedQueue, type OrderedQueueOptions } from "./ordered-queue.js";
export { ProfileCache } from "./profile-cache.js";
export { StartBarrier } from "./start-barrier.js";
