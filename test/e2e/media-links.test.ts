// Links the bridge serves (ctx.mediaLink, issue #16) on the real Synapse: an in-process
// Bridge with media.publicUrl on its own listener; a Matrix user uploads files and sends
// them; the adapter turns each into a link, and a plain fetch without any token downloads it
// byte for byte; a changed signature answers 404, an expired link 410, and an HTML file is
// served as an inert download.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BridgeContext, MatrixMessage, RemoteNetworkAdapter } from "../../src/adapter/adapter.js";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { capturedLog } from "./support/logins-e2e.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";
const LINK_KEY = "e2e-media-link-key-0123456789";

interface Received {
  body: string;
  link: string;
  shortLink: string;
}

/** Makes, for every Matrix file, a link (7 days) and a link that expires within a second. */
function linkingAdapter(received: Received[]): RemoteNetworkAdapter {
  let ctx: BridgeContext | undefined;
  return {
    name: "media",
    start: (c) => {
      ctx = c;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    queryRoom: (id) => Promise.resolve({ name: `Media ${id}`, visibility: "public" }),
    queryUser: () => Promise.resolve(null),
    onMessage: (message: MatrixMessage) => {
      if (message.mediaUrl !== undefined) {
        received.push({
          body: message.body,
          link: ctx!.mediaLink(message.mediaUrl, { fileName: message.body }),
          shortLink: ctx!.mediaLink(message.mediaUrl, { ttlMs: 1 }),
        });
      }
      return Promise.resolve();
    },
  };
}

describe("links the bridge serves, through Synapse", () => {
  let dir: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  let alice: MatrixUser;
  let aliceToken: string;
  let roomId: string;
  const received: Received[] = [];
  const log = capturedLog();

  async function upload(data: Uint8Array, contentType: string, name: string): Promise<string> {
    const res = await fetch(`${synapse!.url}/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${aliceToken}`, "Content-Type": contentType },
      body: data,
    });
    const json = (await res.json()) as { content_uri?: string };
    assert.equal(res.status, 200, JSON.stringify(json));
    return json.content_uri!;
  }

  /** Alice sends a file; returns what the adapter made of it. */
  async function sendFile(data: Uint8Array, contentType: string, name: string): Promise<Received> {
    const url = await upload(data, contentType, name);
    const before = received.length;
    await alice.sendContent(roomId, {
      msgtype: "m.file",
      body: name,
      url,
      info: { mimetype: contentType, size: data.byteLength },
    });
    return poll(
      () => Promise.resolve(received.length > before ? received[before] : undefined),
      () => `the adapter to get ${name}\n${log.tail()}`,
    );
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-media-links-"));
    port = await freePort();
    reg = generateRegistration({
      id: "media-links",
      url: `http://127.0.0.1:${port}`,
      domain: DOMAIN,
      senderLocalpart: "mediabot",
      ghosts: "media_{id}",
      portals: "media_{id}",
    });
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    const configPath = join(dir, "config.yaml");
    await writeFile(
      configPath,
      [
        `homeserver: { url: "${synapse.url}", domain: ${DOMAIN} }`,
        `appservice: { host: 127.0.0.1, port: ${port} }`,
        "store: sqlite://data/media.db",
        "bridge: { ghosts: 'media_{id}', portals: 'media_{id}' }",
        `media: { publicUrl: "http://127.0.0.1:${port}/", linkKey: "${LINK_KEY}" }`,
        'adapter: { module: "./in-process" }',
      ].join("\n"),
    );
    bridge = await Bridge.fromConfig(await loadConfig(configPath, {}), {
      registration: reg,
      adapter: linkingAdapter(received),
      logger: log.logger,
    });
    await bridge.start();
    const user = await synapse.registerUser("alice");
    aliceToken = user.accessToken;
    alice = new MatrixUser(synapse.url, user.userId, user.accessToken);
    roomId = await alice.join(`#media_lobby:${DOMAIN}`);
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves a Matrix user's file byte for byte to a plain fetch without any token", async () => {
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
    const got = await sendFile(data, "image/png", "holiday photo.png");
    assert.match(
      got.link,
      new RegExp(
        `^http://127\\.0\\.0\\.1:${port}/_bridgekit/media/v1/${DOMAIN}/[\\w-]+/\\d+/[\\w-]{22}/holiday%20photo\\.png$`,
      ),
    );
    const res = await fetch(got.link);
    assert.equal(
      res.status,
      200,
      await res
        .clone()
        .text()
        .catch(() => ""),
    );
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("content-length"), String(data.byteLength));
    assert.match(res.headers.get("content-disposition")!, /^inline; filename="holiday photo\.png"/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(data)), "the bytes differ");
    assert.ok(!log.lines.some((l) => l.includes(reg.as_token)), "the as_token is in the log");
  });

  it("answers 404 for a changed signature and 410 for an expired link", async () => {
    const got = await sendFile(new TextEncoder().encode("plain text"), "text/plain", "note.txt");
    const parts = got.link.split("/");
    const sig = parts.at(-2)!;
    parts[parts.length - 2] = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    const forged = await fetch(parts.join("/"));
    assert.equal(forged.status, 404);
    assert.equal(await forged.text(), "Not found\n");
    const renamed = await fetch(got.link.replace(/note\.txt$/, "note.html"));
    assert.equal(renamed.status, 404);
    await renamed.text();
    await sleep(1100); // shortLink was made with ttlMs 1: its expiry (whole seconds) has passed
    const expired = await fetch(got.shortLink);
    assert.equal(expired.status, 410);
    assert.equal(await expired.text(), "This link has expired\n");
    const good = await fetch(got.link);
    assert.equal(good.status, 200);
    assert.equal(await good.text(), "plain text");
  });

  it("serves an HTML file as an inert application/octet-stream download", async () => {
    const html = new TextEncoder().encode("<script>alert(document.cookie)</script>");
    const got = await sendFile(html, "text/html", "page.html");
    const res = await fetch(got.link);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.match(res.headers.get("content-disposition")!, /^attachment; filename="page\.html"/);
    assert.match(res.headers.get("content-security-policy")!, /^sandbox/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(html)));
  });

  it("answers 404 for a signed link to media the homeserver does not have", async () => {
    const missing = bridge!.context.mediaLink(`mxc://${DOMAIN}/NoSuchMediaHere`);
    const res = await fetch(missing);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "Not found\n");
  });
});
