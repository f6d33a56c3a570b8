/**
 * The echo bridge: the smallest complete adapter, and the one to copy from.
 *
 * Its "remote network" is itself. Any alias in its namespace (`#echo_{anything}:{domain}`)
 * becomes a public portal room when someone joins it. In a portal, every Matrix text message
 * is answered by the ghost `@echo_{sender localpart}:{domain}` with "echo: <body>", sent
 * with the original timestamp + 1 ms.
 */
import {
  defineAdapter,
  type BridgeContext,
  type MatrixMessage,
  type Portal,
  type RemoteNetworkAdapter,
} from "matrix-bridgekit";

export interface EchoConfig {
  /** What the echo starts with (default "echo: "). */
  prefix?: string;
}

class EchoAdapter implements RemoteNetworkAdapter {
  readonly name = "echo";
  private ctx: BridgeContext | undefined;

  constructor(private readonly prefix: string) {}

  start(ctx: BridgeContext): Promise<void> {
    this.ctx = ctx;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.ctx = undefined;
    return Promise.resolve();
  }

  /** Every alias in the namespace names a room that exists. */
  queryRoom(remoteId: string) {
    return Promise.resolve({
      name: `Echo ${remoteId}`,
      topic: "Everything you say comes back.",
      visibility: "public" as const,
    });
  }

  /** Every ghost exists: it is the echo of a Matrix user. */
  queryUser(remoteId: string) {
    return Promise.resolve({ displayName: `echo of ${remoteId}` });
  }

  async onMessage(message: MatrixMessage, portal: Portal): Promise<void> {
    if (!this.ctx) throw new Error("echo adapter used before start");
    if (message.msgtype !== "m.text") return; // echo text only; say nothing to images
    const localpart = message.sender.userId.slice(1, message.sender.userId.indexOf(":"));
    await this.ctx.setProfile(localpart, { displayName: `echo of ${message.sender.displayName}` });
    await this.ctx.send(portal.remoteId, localpart, `${this.prefix}${message.body}`, {
      ts: message.ts + 1,
      remoteId: `echo-${message.eventId}`,
    });
  }
}

export default defineAdapter<EchoConfig | null | undefined>(({ config }) => {
  const prefix = config?.prefix ?? "echo: ";
  if (typeof prefix !== "string")
    throw new Error(`adapter.config.prefix must be a string, got ${typeof prefix}`);
  return new EchoAdapter(prefix);
});
