// The bot's OlmMachine on a durable crypto store, for the crypto store's tests and its crash child.
import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { silentLogger } from "../../src/common/logger.js";
import { openCryptoStore, type CryptoStore } from "../../src/crypto/crypto-store.js";
import { loadCryptoSdk, type CryptoSdk } from "../../src/crypto/sdk.js";
import type { Store } from "../../src/store/index.js";

export const TEST_STORE_KEY = new Uint8Array(32).fill(7);

export interface TestBot {
  sdk: CryptoSdk;
  crypto: CryptoStore;
  machine: OlmMachine;
  /** The device's Curve25519 identity key. */
  identity: string;
}

/** Opens the crypto store "bot" of `store` and the bot's machine (@bot:example.org, BOTDEVICE) on it. */
export async function openTestBot(store: Store, key = TEST_STORE_KEY): Promise<TestBot> {
  const sdk = await loadCryptoSdk();
  const crypto = await openCryptoStore(store, "bot", key, silentLogger());
  const machine = await sdk.OlmMachine.initFromStore(
    new sdk.UserId("@bot:example.org"),
    new sdk.DeviceId("BOTDEVICE"),
    crypto.handle,
  );
  return { sdk, crypto, machine, identity: machine.identityKeys.curve25519.toBase64() };
}

/** Whether the machine wants to upload keys; with `answer`, it is told they were (50 one-time keys). */
export async function keysUpload(bot: TestBot, answer: boolean): Promise<boolean> {
  const upload = (await bot.machine.outgoingRequests()).find(
    (r) => r.type === bot.sdk.RequestType.KeysUpload,
  );
  if (upload?.id === undefined) return false;
  if (answer) {
    const counts = { one_time_key_counts: { signed_curve25519: 50 } };
    await bot.machine.markRequestAsSent(upload.id, upload.type, JSON.stringify(counts));
  }
  return true;
}

/** Waits for the mirror, then closes the machine and the crypto store. */
export async function closeTestBot(bot: TestBot): Promise<void> {
  await bot.crypto.mirror.settled();
  bot.machine.close();
  await bot.crypto.close();
}
