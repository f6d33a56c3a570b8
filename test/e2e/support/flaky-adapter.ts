/**
 * An echo adapter with a bug, for the failure-isolation e2e test: it throws a TypeError on any
 * message containing "poison", until the file named by `adapter.config.fixedFile` exists
 * (the bug is "fixed" without a restart).
 */
import { existsSync } from "node:fs";
import { defineAdapter, type BridgeContext } from "../../../src/index.js";

export default defineAdapter<{ fixedFile: string }>(({ config }) => {
  let ctx: BridgeContext | undefined;
  return {
    name: "flaky",
    start(c) {
      ctx = c;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    queryRoom: (id) => Promise.resolve({ name: `Flaky ${id}`, visibility: "public" as const }),
    queryUser: (id) => Promise.resolve({ displayName: id }),
    async onMessage(message, portal, call) {
      if (message.body.includes("poison") && !existsSync(config.fixedFile)) {
        call.log.info("about to fail on purpose");
        throw new TypeError("cannot read properties of undefined (reading 'poison')");
      }
      await ctx!.send(portal.remoteId, "echo", `echo: ${message.body}`);
    },
  };
});
