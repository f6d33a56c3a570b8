// The Synapse harness itself: loud failures, test users, clean stop.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { generateRegistration } from "../../src/registration/index.js";
import { startAppserviceStub } from "./support/appservice-stub.js";
import { startSynapse } from "./support/synapse.js";

function registration(url: string) {
  return generateRegistration({
    id: "harness",
    url,
    domain: "localhost",
    senderLocalpart: "hbot",
    ghosts: "h_{id}",
  });
}

describe("Synapse harness", () => {
  it("fails loudly, with Synapse's own words, when Synapse cannot start", async () => {
    await assert.rejects(
      startSynapse({
        registrations: [registration("http://127.0.0.1:1")],
        config: { database: { name: "nosuchdb" } },
      }),
      (err: Error) => {
        assert.match(err.message, /Synapse exited while starting/);
        assert.match(err.message, /nosuchdb/, "the log tail names the bad setting");
        return true;
      },
    );
  });

  it("registers test users, pushes to the registration's url, and stops cleanly", async () => {
    const reg = registration("http://127.0.0.1:1");
    const stub = await startAppserviceStub(reg.hs_token);
    reg.url = stub.url;
    const synapse = await startSynapse({ registrations: [reg] });
    try {
      const alice = await synapse.registerUser("alice");
      assert.equal(alice.userId, "@alice:localhost");
      const headers = { Authorization: `Bearer ${alice.accessToken}`, "Content-Type": "application/json" };
      const created = await fetch(`${synapse.url}/_matrix/client/v3/createRoom`, {
        method: "POST",
        headers,
        body: JSON.stringify({ invite: ["@h_bob:localhost"] }),
      });
      assert.equal(created.status, 200, await created.clone().text());
      const { room_id } = (await created.json()) as { room_id: string };
      const invite = await stub.waitForEvent(
        (e) => e.room_id === room_id && e.state_key === "@h_bob:localhost",
      );
      assert.equal(invite.content.membership, "invite", "Synapse pushed the invite of a namespaced user");
    } finally {
      await synapse.stop();
      await synapse.stop();
      await stub.close();
    }
    assert.equal(existsSync(synapse.dataDir), false, "the data folder is removed");
    await assert.rejects(fetch(`${synapse.url}/_matrix/client/versions`), "Synapse no longer answers");
  });
});
