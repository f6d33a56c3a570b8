import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { HomeserverClient, type HomeserverClientOptions } from "../../../src/client/index.js";
import type { Registration } from "../../../src/registration/index.js";
import { openStore, type Store } from "../../../src/store/index.js";

export const AS_TOKEN = "as_secret_token_0123456789";
export const DOMAIN = "example.org";
export const BOT = `@bot:${DOMAIN}`;

export function registration(): Registration {
  return {
    id: "test",
    url: null,
    as_token: AS_TOKEN,
    hs_token: "hs_secret_token_9876543210",
    sender_localpart: "bot",
    namespaces: {
      users: [{ regex: "@ghost_.*", exclusive: true }],
      aliases: [{ regex: "#ghost_.*", exclusive: true }],
      rooms: [],
    },
  };
}

export interface Fixture {
  hs: FakeHomeserver;
  store: Store;
  client: HomeserverClient;
  /** Another client on the same homeserver and store, as after a restart. */
  newClient(opts?: Partial<HomeserverClientOptions>): HomeserverClient;
  close(): Promise<void>;
}

/** A fake homeserver, a memory store and a client with fast retries. */
export async function fixture(opts: Partial<HomeserverClientOptions> = {}): Promise<Fixture> {
  const hs = await FakeHomeserver.start({ asToken: AS_TOKEN, domain: DOMAIN, botLocalpart: "bot" });
  const store = opts.store ?? (await openStore("memory://"));
  const make = (more: Partial<HomeserverClientOptions> = {}) =>
    new HomeserverClient({
      homeserverUrl: hs.url,
      domain: DOMAIN,
      registration: registration(),
      store,
      retry: { baseDelayMs: 1, maxDelayMs: 20, maxAttempts: 4 },
      ...opts,
      ...more,
    });
  const client = make();
  return {
    hs,
    store,
    client,
    newClient: make,
    close: async () => {
      await client.close();
      await hs.close();
      await store.close();
    },
  };
}
