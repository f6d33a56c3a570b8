// Double puppeting against a real Synapse (see test/e2e/support/synapse.ts): a second,
// double-puppet registration loaded beside the bridge's own, and tokens users hand over.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HomeserverClient } from "../../src/client/index.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import {
  DOUBLE_PUPPET_SOURCE_KEY,
  DoublePuppetError,
  DoublePuppets,
  isDoublePuppetEcho,
} from "../../src/users/double-puppet.js";
import { startAppserviceStub, type AppserviceStub } from "./support/appservice-stub.js";
import { MatrixUser } from "./support/matrix-user.js";
import { startSynapse, type SynapseInstance, type TestUser } from "./support/synapse.js";

const DOMAIN = "localhost";
const MARKER = "dp-e2e";

describe("double puppeting against Synapse", () => {
  let synapse: SynapseInstance;
  let stub: AppserviceStub;
  let reg: Registration;
  let store: Store;
  let client: HomeserverClient;
  let puppets: DoublePuppets;
  let alice: TestUser;
  let bob: TestUser;
  /** Alice's own view, through the client-server API with her token. */
  let aliceClient: MatrixUser;
  /** A room Alice made, with the bridge bot in it (so the bridge is pushed its events). */
  let roomId: string;

  const event = (id: string) =>
    aliceClient.request<MatrixEvent>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(id)}`,
    );

  before(async () => {
    reg = generateRegistration({
      id: "dp-e2e",
      url: "http://127.0.0.1:1",
      domain: DOMAIN,
      senderLocalpart: "dpbot",
      ghosts: "dp_{id}",
    });
    stub = await startAppserviceStub(reg.hs_token);
    reg.url = stub.url;
    synapse = await startSynapse({ registrations: [reg], doublePuppet: true, serverName: DOMAIN });
    store = await openStore("memory://");
    client = new HomeserverClient({
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      registration: reg,
      store,
      retry: { baseDelayMs: 50, maxDelayMs: 1000 },
    });
    puppets = new DoublePuppets({ client, registration: synapse.doublePuppet!, marker: MARKER });
    alice = await synapse.registerUser("dpalice");
    bob = await synapse.registerUser("dpbob");
    aliceClient = new MatrixUser(synapse.url, alice.userId, alice.accessToken);
    const created = await aliceClient.request<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      invite: [client.botUserId],
    });
    roomId = created.room_id;
    await client.botIntent.join(roomId);
  });

  after(async () => {
    await client?.close();
    await store?.close();
    await synapse?.stop();
    await stub?.close();
  });

  it("the appservice method: a message sent through the second registration is the real user's", async () => {
    assert.ok(puppets.covers(alice.userId));
    const puppet = await puppets.appservice(alice.userId);
    const ts = Date.now() - 60_000;
    const eventId = await puppet.sendText(roomId, "sent from my other client", { ts });
    const seen = await event(eventId);
    assert.equal(seen.sender, alice.userId);
    assert.equal(seen.content.body, "sent from my other client");
    assert.equal(seen.content[DOUBLE_PUPPET_SOURCE_KEY], MARKER);
    assert.equal(seen.origin_server_ts, ts, "an application service may set the timestamp");

    const pushed = await stub.waitForEvent((e) => e.event_id === eventId);
    assert.ok(isDoublePuppetEcho(pushed.content, MARKER), "the bridge can tell its own puppet's echo");

    const reaction = await puppet.sendReaction(roomId, eventId, "👍");
    const reacted = await event(reaction);
    assert.equal(reacted.sender, alice.userId);
    assert.deepEqual(reacted.content["m.relates_to"], {
      rel_type: "m.annotation",
      event_id: eventId,
      key: "👍",
    });
    await puppet.redact(roomId, reaction, { reason: "changed my mind" });
    const redacted = await event(reaction);
    assert.deepEqual(redacted.content, {}, "the reaction is redacted");
    await puppet.sendReadReceipt(roomId, eventId);
  });

  it("the appservice method refuses a user Synapse does not know", async () => {
    await assert.rejects(puppets.appservice(`@nobody:${DOMAIN}`), (err: unknown) => {
      assert.ok(err instanceof DoublePuppetError);
      assert.equal(err.failure, "refused");
      assert.match(
        err.message,
        /^double puppeting for @nobody:localhost failed: the homeserver refused .*403 M_FORBIDDEN/,
      );
      return true;
    });
  });

  it("a token the user handed over: checked with whoami, then the message is theirs", async () => {
    const token = await synapse.login("dpalice");
    const puppet = await puppets.withToken(alice.userId, token);
    assert.equal(puppet.method, "token");
    const eventId = await puppet.sendText(roomId, "with my own token");
    const seen = await event(eventId);
    assert.equal(seen.sender, alice.userId);
    assert.equal(seen.content[DOUBLE_PUPPET_SOURCE_KEY], MARKER);
  });

  it("someone else's token or an unknown one gives the clear error", async () => {
    await assert.rejects(puppets.withToken(alice.userId, bob.accessToken), (err: unknown) => {
      assert.ok(err instanceof DoublePuppetError);
      assert.equal(
        err.message,
        "double puppeting for @dpalice:localhost failed: the token belongs to @dpbob:localhost",
      );
      assert.ok(!err.message.includes(bob.accessToken));
      return true;
    });
    await assert.rejects(
      puppets.withToken(alice.userId, "syt_this_is_no_token"),
      /^DoublePuppetError: double puppeting for @dpalice:localhost failed: the homeserver refused the token: 401 M_UNKNOWN_TOKEN/,
    );
  });

  it("a token logged out later invalidates the puppet (401 M_UNKNOWN_TOKEN)", async () => {
    const token = await synapse.login("dpalice");
    const puppet = await puppets.withToken(alice.userId, token);
    await puppet.sendText(roomId, "before logout");
    await new MatrixUser(synapse.url, alice.userId, token).request("POST", "/_matrix/client/v3/logout", {});
    await assert.rejects(puppet.sendText(roomId, "after logout"), (err: unknown) => {
      assert.ok(err instanceof DoublePuppetError);
      assert.equal(err.failure, "invalidated");
      return true;
    });
    assert.equal(puppet.valid, false);
    await assert.rejects(puppets.withToken(alice.userId, token), /refused the token: 401 M_UNKNOWN_TOKEN/);
  });
});
