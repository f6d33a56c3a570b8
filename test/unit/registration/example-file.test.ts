import { it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadRegistration, NamespaceMatcher } from "../../../src/registration/index.js";

it("registration.yaml.example loads cleanly and means what its comments say", async () => {
  const reg = await loadRegistration(join(import.meta.dirname, "../../../registration.yaml.example"));
  const m = new NamespaceMatcher(reg, "example.org");
  assert.ok(m.isUserExclusive("@irc_alice:example.org"));
  assert.ok(m.isAliasExclusive("#irc_chan:example.org"));
  assert.equal(m.botUserId, "@ircbot:example.org");
  assert.equal(reg.rate_limited, false);
});
