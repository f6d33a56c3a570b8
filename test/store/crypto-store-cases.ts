// The durable crypto store (src/crypto/crypto-store.ts, idb-mirror.ts) on one backend: what
// the Rust crypto wrote is there after a reopen, a wrong pickle key is refused, and a crash
// at any write leaves a store that opens with everything the crypto code was told is stored.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import type { Store } from "../../src/store/index.js";
import { closeTestBot, keysUpload, openTestBot } from "../support/bot-crypto.js";
import { openTestStore, reopenTestStore, type Backend } from "./backends.js";

/** What the crypto code of one run saw completed. */
interface Seen {
  identity?: string;
  uploaded?: boolean;
}

/** Opens the bot's machine, uploads its keys (a fake answer), and notes what completed. */
async function run(store: Store): Promise<Seen> {
  const bot = await openTestBot(store);
  const uploaded = await keysUpload(bot, true);
  await closeTestBot(bot);
  return { identity: bot.identity, uploaded };
}

/** The identity of a reopened machine, and whether it still wants to upload keys. */
async function wantsUpload(store: Store): Promise<{ identity: string; upload: boolean }> {
  const bot = await openTestBot(store);
  const upload = await keysUpload(bot, false);
  await closeTestBot(bot);
  return { identity: bot.identity, upload };
}

const CHILD = fileURLToPath(new URL("../support/crypto-crash-child.ts", import.meta.url));

/** Runs the crash child with ALLOWED writes; what it printed (the crypto code's view at the crash). */
function crashChild(
  store: Store,
  url: string,
  allowed: number,
): Seen & { writes: number; finished?: boolean } {
  const child = spawnSync(process.execPath, ["--import", "tsx", CHILD], {
    env: { ...process.env, STORE_URL: url, STORE_PREFIX: store.prefix, ALLOWED: String(allowed) },
    encoding: "utf8",
  });
  const line = child.stdout.trim().split("\n").pop() ?? "";
  assert.ok(
    line.startsWith("{"),
    `the crash child printed its state (status ${child.status}, signal ${child.signal}): ${child.stderr}`,
  );
  return JSON.parse(line) as Seen & { writes: number; finished?: boolean };
}

/** The URL a child process opens the same data with. */
function storeUrl(backend: Backend, store: Store): string {
  return store.backend === "sqlite" ? `sqlite://${new URL(store.description).pathname}` : backend.url;
}

/** `crash`: also the SIGKILL test (a child process per write: about 30 s). */
export function cryptoStoreCases(backend: Backend, opts: { crash: boolean }): void {
  describe(`crypto store on ${backend.name}`, () => {
    it("gives the same identity keys after a reopen, and remembers the keys it uploaded", async () => {
      const store = await openTestStore(backend, { fresh: true });
      const first = await run(store);
      assert.equal(first.uploaded, true, "a new device uploads its keys");
      const again = backend.persistent ? await reopenTestStore(backend, store) : store;
      if (again !== store) await store.close();
      const reopened = await wantsUpload(again);
      assert.equal(reopened.identity, first.identity);
      assert.equal(reopened.upload, false, "the uploaded one-time keys were remembered");
      await again.close();
    });

    it("refuses a wrong pickle key, naming encryption.pickleKey", async () => {
      const store = await openTestStore(backend, { fresh: true });
      await run(store);
      await assert.rejects(openTestBot(store, new Uint8Array(32).fill(8)), /encryption\.pickleKey/);
      await store.close();
    });

    // Only where a store outlives its process, and in the store suite (one child per write is slow).
    if (backend.persistent && opts.crash)
      it("after a SIGKILL at any write, opens with everything the crypto code saw stored", async () => {
        // A whole run first: how many writes it makes.
        const probe = await openTestStore(backend, { fresh: true });
        const url = storeUrl(backend, probe);
        const whole = crashChild(probe, url, Number.MAX_SAFE_INTEGER);
        await probe.close();
        assert.equal(whole.finished, true);
        assert.ok(whole.writes >= 3, `a run writes several transactions (${whole.writes})`);

        for (let allowed = 0; allowed <= whole.writes; allowed++) {
          const store = await openTestStore(backend, { fresh: true });
          const seen = crashChild(store, storeUrl(backend, store), allowed);
          const after = await wantsUpload(store);
          if (seen.identity !== undefined)
            assert.equal(after.identity, seen.identity, `killed after ${allowed} writes`);
          if (seen.uploaded)
            assert.equal(
              after.upload,
              false,
              `killed after ${allowed} writes: the uploaded keys are remembered`,
            );
          // And it opens the same way twice: nothing half-written.
          assert.equal((await wantsUpload(store)).identity, after.identity);
          await store.close();
        }
      });
  });
}
