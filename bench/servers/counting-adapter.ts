import type { BridgeContext, RemoteNetworkAdapter } from "../../src/adapter/index.js";

/**
 * The smallest adapter a benchmark needs: counts the Matrix messages the Bridge hands it
 * (returning no remote id, so nothing is written per message beyond the framework's own
 * journal) and keeps the context so the benchmark can send from remote users.
 */
export class CountingAdapter implements RemoteNetworkAdapter {
  readonly name = "bench";
  readonly createPortalsOnDemand = true;
  count = 0;
  ctx: BridgeContext | undefined;

  start(ctx: BridgeContext): Promise<void> {
    this.ctx = ctx;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  onMessage(): Promise<void> {
    this.count++;
    return Promise.resolve();
  }
  queryRoom(remoteId: string) {
    return Promise.resolve({ name: `Bench ${remoteId}` });
  }
}
