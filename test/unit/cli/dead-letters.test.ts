// bridgekit dead-letters: against the store while the bridge is stopped, and against a
// running appservice over HTTP (with the registration's hs_token).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run-cli.js";
import { createAppservice } from "../../../src/appservice/index.js";
import { DeadLetters, type DeadLetter } from "../../../src/inbox/index.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import {
  generateRegistration,
  saveRegistration,
  type Registration,
} from "../../../src/registration/index.js";
import { openStore } from "../../../src/store/index.js";
import { freePort } from "../../support/net.js";

let dir: string;
let reg: Registration;
let config: string;
let port: number;
const dbUrl = () => `sqlite://${join(dir, "bridge.db")}`;

function letter(n: number): DeadLetter {
  const event: MatrixEvent = {
    event_id: `$dead${n}:example.org`,
    room_id: "!room:example.org",
    type: "m.room.message",
    sender: "@alice:example.org",
    origin_server_ts: 1,
    content: { msgtype: "m.text", body: `message ${n}` },
  };
  return {
    id: event.event_id,
    roomId: event.room_id,
    item: { kind: "event", event },
    reason: "exhausted",
    error: { name: "TypeError", message: "cannot map this" },
    userMessage: "the bridge could not deliver it (3 tries)",
    attempts: 3,
    firstTriedAt: 1_700_000_000_000,
    lastTriedAt: 1_700_000_003_000,
    deadAt: 1_700_000_003_000,
  };
}

async function seed(...ns: number[]): Promise<void> {
  const store = await openStore(dbUrl());
  const letters = new DeadLetters(store);
  for (const letter of await letters.list()) await letters.remove(letter.id);
  for (const n of ns) await letters.add(letter(n));
  await store.close();
}

async function stored(): Promise<DeadLetter[]> {
  const store = await openStore(dbUrl());
  try {
    return await new DeadLetters(store).list();
  } finally {
    await store.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bridgekit-dead-"));
  port = await freePort();
  reg = generateRegistration({
    id: "dead",
    url: `http://127.0.0.1:${port}`,
    domain: "example.org",
    senderLocalpart: "deadbot",
    ghosts: "dead_{id}",
  });
  await saveRegistration(join(dir, "registration.yaml"), reg);
  config = join(dir, "config.yaml");
  await writeFile(
    config,
    [
      `homeserver: { url: "http://127.0.0.1:1", domain: example.org }`,
      `appservice: { port: ${port} }`,
      `store: "${dbUrl()}"`,
      "bridge: { ghosts: 'dead_{id}' }",
      "adapter: { module: ./none.js }",
    ].join("\n"),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bridgekit dead-letters, bridge stopped (the store)", () => {
  it("lists them with the event, the reason and the tries; --json gives the records", async () => {
    await seed(1, 2);
    const { code, out } = await run("dead-letters", "list", "--config", config);
    assert.equal(code, 0);
    assert.match(out, /^2 dead letters in the store sqlite:/);
    assert.match(
      out,
      /\$dead1:example\.org {2}m\.room\.message from @alice:example\.org in !room:example\.org/,
    );
    assert.match(out, /exhausted after 3 tries: TypeError: cannot map this/);
    const json = await run("dead-letters", "list", "--json", "--config", config);
    assert.deepEqual(
      (JSON.parse(json.out) as DeadLetter[]).map((l) => l.id),
      ["$dead1:example.org", "$dead2:example.org"],
    );
  });

  it("retry marks them for the next start; drop forgets them; an unknown id fails", async () => {
    await seed(1, 2);
    const retry = await run("dead-letters", "retry", "$dead1:example.org", "--config", config);
    assert.equal(retry.code, 0);
    assert.match(retry.out, /retrying \$dead1:example\.org/);
    assert.match(retry.out, /retries happen at its next start/);
    const drop = await run("dead-letters", "drop", "$dead2:example.org", "--config", config);
    assert.equal(drop.code, 0);
    const left = await stored();
    assert.deepEqual(
      left.map((l) => [l.id, l.retryRequested]),
      [["$dead1:example.org", true]],
    );
    const missing = await run("dead-letters", "drop", "$nope:example.org", "--config", config);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /no dead letter \$nope:example\.org/);
    const all = await run("dead-letters", "drop", "--all", "--config", config);
    assert.equal(all.code, 0);
    assert.deepEqual(await stored(), []);
  });

  it("refuses wrong invocations with the usage", async () => {
    for (const args of [[], ["burn"], ["retry"], ["list", "$x"], ["drop", "$x", "--all"]]) {
      const { code, err } = await run("dead-letters", ...args, "--config", config);
      assert.equal(code, 2, args.join(" "));
      assert.match(err, /usage: bridgekit dead-letters list\|retry\|drop/);
    }
  });
});

describe("bridgekit dead-letters, bridge running (its HTTP API)", () => {
  it("lists, retries (delivered at once) and drops through the bridge; a wrong token is refused", async () => {
    await seed(1, 2);
    const store = await openStore(dbUrl());
    const handled: string[] = [];
    const as = createAppservice({
      registration: reg,
      domain: "example.org",
      store,
      handlers: {
        onEvent: (event) => {
          handled.push(event.event_id);
          return Promise.resolve();
        },
      },
    });
    await as.listen(port, "127.0.0.1");
    try {
      const list = await run("dead-letters", "list", "--config", config);
      assert.equal(list.code, 0);
      assert.match(list.out, /^2 dead letters in the running bridge at http:\/\/127\.0\.0\.1:/);
      const retry = await run("dead-letters", "retry", "$dead1:example.org", "--config", config);
      assert.equal(retry.code, 0, retry.err);
      await as.drain();
      assert.deepEqual(handled, ["$dead1:example.org"]);
      assert.deepEqual(
        (await as.deadLetters.list()).map((l) => l.id),
        ["$dead2:example.org"],
      );
      assert.equal((await run("dead-letters", "drop", "$dead2:example.org", "--config", config)).code, 0);
      assert.deepEqual(await as.deadLetters.list(), []);
      const denied = await fetch(`http://127.0.0.1:${port}/_bridgekit/v1/dead-letters`, {
        headers: { Authorization: "Bearer wrong" },
      });
      assert.equal(denied.status, 403);
    } finally {
      await as.close();
      await store.close();
    }
  });
});
