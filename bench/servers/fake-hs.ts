/**
 * The in-process fake homeserver (test/support/fake-homeserver.ts) as a process of its own,
 * so that a bridge can be restarted against the same homeserver state, and so its CPU is
 * not the bridge's. `requests` says how many requests it has seen; `clear` forgets its
 * request log (it records every request).
 */
import { FakeHomeserver } from "../../test/support/fake-homeserver.js";
import { serve } from "../lib/rpc.js";

const { asToken, domain, botLocalpart } = JSON.parse(process.argv[2] ?? "{}") as {
  asToken: string;
  domain: string;
  botLocalpart: string;
};
const hs = await FakeHomeserver.start({ asToken, domain, botLocalpart });
let seen = 0;
serve(
  {
    requests: () => seen + hs.requests.length,
    clear: () => {
      seen += hs.requests.length;
      hs.requests.length = 0;
      return true;
    },
  },
  { url: hs.url },
  () => hs.close(),
);
