// Rooms that look and behave bridged (issue #17), on a real Synapse: a portal's bridge info
// (m.bridge, uk.half-shot.bridge) set at creation and updated by setRoomInfo. An in-process
// Bridge with the fake logins-capable network (test/support/fake-network.ts) and its relay
// bot; real Matrix users speak the client-server API. The steps share one Synapse and run in
// order. The same paths on the fake homeserver: test/unit/rooms/*.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import type { Registration } from "../../src/registration/index.js";
import { FakeNetwork, loginsAdapter } from "../support/fake-network.js";
import { capturedLog, loginsConfigYaml, loginsRegistration, loginsWaits } from "./support/logins-e2e.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";
const BOT = `@fakebot:${DOMAIN}`;
const INFO_KEY = "fake-rooms://fake/main/lobby";

describe("rooms on Synapse: bridge info", () => {
  let dir: string;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  let reg: Registration;
  const network = new FakeNetwork();
  const adapter = Object.assign(loginsAdapter(network, { relayBot: true }), {
    bridgeInfo: {
      protocol: { displayName: "Fake Chat", externalUrl: "https://fake.example" },
      network: { id: "main", displayName: "Main" },
      room: (id: string) => ({ externalUrl: `https://fake.example/rooms/${id}` }),
    },
  });
  let alice: MatrixUser;
  let lobby = "";
  const log = capturedLog();
  const { sentMatching } = loginsWaits({ network, botUserId: BOT, logTail: log.tail });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-rooms-"));
    const port = await freePort();
    reg = { ...loginsRegistration("fake-rooms", port, DOMAIN), receive_ephemeral: true };
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    const configPath = join(dir, "config.yaml");
    await writeFile(
      configPath,
      loginsConfigYaml({
        homeserverUrl: synapse.url,
        domain: DOMAIN,
        port,
        store: "sqlite://data/rooms.db",
        encryptionKey: "e2e-rooms-encryption-key-0123456789",
        extra: ["permissions: { '*': relay, localhost: admin }"],
      }),
    );
    network.addAccount("alice", "alice-remote-pw");
    const a = await synapse.registerUser("alice");
    alice = new MatrixUser(synapse.url, a.userId, a.accessToken);
    bridge = await Bridge.fromConfig(await loadConfig(configPath, {}), {
      registration: reg,
      adapter,
      logger: log.logger,
    });
    await bridge.start();
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a new portal carries m.bridge and uk.half-shot.bridge; setRoomInfo's new name reaches both", async () => {
    lobby = await alice.join(`#fake_lobby:${DOMAIN}`);
    const expected = {
      bridgebot: BOT,
      protocol: { id: "fake", displayname: "Fake Chat", external_url: "https://fake.example" },
      network: { id: "main", displayname: "Main" },
      channel: { id: "lobby", displayname: "Fake lobby", external_url: "https://fake.example/rooms/lobby" },
    };
    assert.deepEqual(await alice.state(lobby, "m.bridge", INFO_KEY), expected);
    assert.deepEqual(await alice.state(lobby, "uk.half-shot.bridge", INFO_KEY), expected);

    await adapter.ctx!.setRoomInfo("lobby", { name: "The Lobby" });
    const renamed = { ...expected, channel: { ...expected.channel, displayname: "The Lobby" } };
    await poll(
      async () => {
        const now = await alice.state(lobby, "uk.half-shot.bridge", INFO_KEY);
        return (now?.channel as { displayname?: string } | undefined)?.displayname === "The Lobby"
          ? now
          : undefined;
      },
      () => `the bridge info was not renamed\n${log.tail()}`,
    );
    assert.deepEqual(await alice.state(lobby, "m.bridge", INFO_KEY), renamed);
    assert.deepEqual(await alice.state(lobby, "m.room.name"), { name: "The Lobby" });
    await alice.send(lobby, "hello lobby");
    await sentMatching("alice's relayed message", (s) => s.text.endsWith("hello lobby"));
  });
});
