// A bridge process for the crypto store's crash test (test/store/crypto-store-cases.ts): opens
// the bot's crypto store on STORE_URL (prefix STORE_PREFIX), lets ALLOWED writes of its
// "crypto" namespace through, and at the next one prints what the crypto code saw completed
// and kills itself with SIGKILL, so nothing later reaches the store. A run that ends first
// prints the same and exits 0.
import { writeSync } from "node:fs";
import { openStore, type KeyValue, type Store } from "../../src/store/index.js";
import { closeTestBot, keysUpload, openTestBot } from "./bot-crypto.js";

const allowed = Number(process.env.ALLOWED ?? "Infinity");
const seen: { identity?: string; uploaded?: boolean; writes: number; finished?: boolean } = { writes: 0 };
const report = () => writeSync(1, `${JSON.stringify(seen)}\n`);

const base = await openStore(process.env.STORE_URL!, { prefix: process.env.STORE_PREFIX! });
const store: Store = {
  ...base,
  description: base.description,
  backend: base.backend,
  prefix: base.prefix,
  close: () => base.close(),
  namespace<V>(name: string): KeyValue<V> {
    const kv = base.namespace<V>(name);
    if (name !== "crypto") return kv;
    return {
      ...kv,
      get: (k) => kv.get(k),
      getMany: (k) => kv.getMany(k),
      has: (k) => kv.has(k),
      setMany: (entries) => {
        if (seen.writes >= allowed) {
          report();
          process.kill(process.pid, "SIGKILL");
        }
        seen.writes++;
        return kv.setMany(entries);
      },
    };
  },
};

const bot = await openTestBot(store);
seen.identity = bot.identity;
seen.uploaded = await keysUpload(bot, true);
await bot.crypto.mirror.settled();
seen.finished = true;
report();
await closeTestBot(bot);
await base.close();
