/**
 * The Rust crypto (matrix-sdk-crypto through `@matrix-org/matrix-sdk-crypto-wasm`), loaded on
 * first use: a bridge without encryption never loads its 8 MB of WebAssembly.
 */
import type * as Sdk from "@matrix-org/matrix-sdk-crypto-wasm";

export type CryptoSdk = typeof Sdk;

let loading: Promise<CryptoSdk> | undefined;

/** The module, its WebAssembly initialised (once per process). */
export function loadCryptoSdk(): Promise<CryptoSdk> {
  return (loading ??= (async () => {
    const sdk = await import("@matrix-org/matrix-sdk-crypto-wasm");
    await sdk.initAsync();
    return sdk;
  })().catch((err: unknown) => {
    loading = undefined;
    throw new Error(`cannot load @matrix-org/matrix-sdk-crypto-wasm: ${(err as Error).message}`, {
      cause: err,
    });
  }));
}
