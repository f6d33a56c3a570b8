// Files to Matrix end to end (issue #16): a real Synapse (max_upload_size 1 MiB) and an
// in-process Bridge whose adapter sends an image as bytes, one with a thumbnail (by URL), a
// PDF as a stream and a GIF by http URL (from a local server, through a redirect). A Matrix user reads them back through
// the client-server API as m.image / m.file with their info and downloads the same bytes
// through authenticated media; a file over the server's limit is refused at ctx.send; an
// avatar by URL (room and ghost) is fetched and uploaded once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { MediaTooLargeError } from "../../src/media/index.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { TestAdapter } from "../support/bridge-harness.js";
import { startFileServer, type FileServer } from "../support/file-server.js";
import * as f from "../support/media-fixtures.js";
import { capturedLog } from "./support/logins-e2e.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";

describe("files to Matrix through Synapse: bytes, stream, URL, the server's limit, avatars by URL", () => {
  let dir: string;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  let files: FileServer;
  let alice: MatrixUser;
  let roomId: string;
  const adapter = new TestAdapter();
  const log = capturedLog();
  let reg: Registration;

  async function download(mxc: string): Promise<Uint8Array> {
    const [server, id] = mxc.slice("mxc://".length).split("/");
    const res = await fetch(`${synapse!.url}/_matrix/client/v1/media/download/${server}/${id}`, {
      headers: { Authorization: `Bearer ${aliceToken}` },
    });
    assert.equal(res.status, 200, `download ${mxc}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  let aliceToken: string;

  const waitMedia = (fileName: string) =>
    alice.waitForEvent(
      roomId,
      (e: MatrixEvent) => e.type === "m.room.message" && e.content.filename === fileName,
      `the message with ${fileName}`,
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-media-"));
    const port = await freePort();
    reg = generateRegistration({
      id: "media",
      url: `http://127.0.0.1:${port}`,
      domain: DOMAIN,
      senderLocalpart: "mediabot",
      ghosts: "media_{id}",
      portals: "media_{id}",
    });
    synapse = await startSynapse({
      registrations: [reg],
      serverName: DOMAIN,
      config: { max_upload_size: "1M" },
    });
    files = await startFileServer();
    const configPath = join(dir, "config.yaml");
    await writeFile(
      configPath,
      [
        `homeserver: { url: "${synapse.url}", domain: ${DOMAIN} }`,
        `appservice: { host: 127.0.0.1, port: ${port} }`,
        "store: sqlite://data/media.db",
        "bridge: { ghosts: 'media_{id}', portals: 'media_{id}' }",
        'adapter: { module: "./in-process" }',
        "client: { retryAttempts: 4, maxBackoffMs: 500 }",
      ].join("\n"),
    );
    const config = await loadConfig(configPath, {});
    assert.equal(config.media.spoolDir, join(dir, "media-spool"));
    bridge = await Bridge.fromConfig(config, { registration: reg, adapter, logger: log.logger });
    await bridge.start();
    const user = await synapse.registerUser("alice");
    aliceToken = user.accessToken;
    alice = new MatrixUser(synapse.url, user.userId, user.accessToken);
    roomId = await alice.join(`#media_lobby:${DOMAIN}`);
  });

  after(async () => {
    await bridge?.stop();
    await files?.close();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("an image as bytes arrives as m.image with mimetype, size, w and h, and the same bytes", async () => {
    const image = f.jpeg(320, 200, 2000);
    await adapter.ctx!.send("lobby", "bob", {
      body: "",
      attachment: { source: image, fileName: "photo.jpg" },
    });
    const e = await waitMedia("photo.jpg");
    assert.equal(e.sender, `@media_bob:${DOMAIN}`);
    assert.equal(e.content.msgtype, "m.image");
    assert.equal(e.content.body, "photo.jpg");
    assert.deepEqual(e.content.info, { mimetype: "image/jpeg", size: image.length, w: 320, h: 200 });
    assert.deepEqual(await download(e.content.url as string), image);
  });

  it("an image with the adapter's thumbnail (by URL) arrives with thumbnail_url and thumbnail_info", async () => {
    const image = f.png(800, 600);
    const thumb = f.jpeg(80, 60);
    files.serve("/thumb.jpg", thumb, { contentType: "image/jpeg" });
    await adapter.ctx!.send("lobby", "bob", {
      body: "",
      attachment: {
        source: image,
        fileName: "wide.png",
        thumbnail: { source: files.url("/thumb.jpg") },
      },
    });
    const e = await waitMedia("wide.png");
    assert.equal(e.content.msgtype, "m.image");
    const info = e.content.info as Record<string, unknown>;
    assert.match(info.thumbnail_url as string, /^mxc:\/\/localhost\//);
    assert.notEqual(info.thumbnail_url, e.content.url);
    assert.deepEqual(
      { ...info, thumbnail_url: "" },
      {
        mimetype: "image/png",
        size: image.length,
        w: 800,
        h: 600,
        thumbnail_url: "",
        thumbnail_info: { mimetype: "image/jpeg", size: thumb.length, w: 80, h: 60 },
      },
    );
    assert.deepEqual(await download(info.thumbnail_url as string), thumb);
    assert.deepEqual(await download(e.content.url as string), image);
  });

  it("a file as a stream arrives as m.file with its caption, and the same bytes", async () => {
    const pdf = new TextEncoder().encode("%PDF-1.7\n" + "0123456789".repeat(30_000));
    async function* chunks() {
      for (let i = 0; i < pdf.length; i += 65_536) {
        await Promise.resolve();
        yield pdf.subarray(i, i + 65_536);
      }
    }
    await adapter.ctx!.send("lobby", "bob", {
      body: "the minutes",
      attachment: { source: chunks(), fileName: "minutes.pdf" },
    });
    const e = await waitMedia("minutes.pdf");
    assert.equal(e.content.msgtype, "m.file");
    assert.equal(e.content.body, "the minutes");
    assert.deepEqual(e.content.info, { mimetype: "application/pdf", size: pdf.length });
    assert.deepEqual(await download(e.content.url as string), pdf);
  });

  it("an http URL (through a redirect) arrives as m.image, and the same bytes", async () => {
    const pic = f.gif(64, 48);
    files.serve("/anim.gif", pic, { contentType: "image/gif" });
    await adapter.ctx!.send("lobby", "carol", {
      body: "",
      attachment: { source: files.url("/hop/2/anim.gif"), fileName: "anim.gif" },
    });
    const e = await waitMedia("anim.gif");
    assert.equal(e.content.msgtype, "m.image");
    assert.deepEqual(e.content.info, { mimetype: "image/gif", size: pic.length, w: 64, h: 48 });
    assert.deepEqual(await download(e.content.url as string), pic);
    await bridge!.flush();
    assert.deepEqual(
      (await readdir(join(dir, "media-spool"))).filter((n) => n.endsWith(".spool")),
      [],
      "spool emptied",
    );
  });

  it("a file over Synapse's max_upload_size is refused at ctx.send", async () => {
    await assert.rejects(
      adapter.ctx!.send("lobby", "bob", {
        body: "",
        attachment: { source: new Uint8Array(1_100_000), fileName: "huge.bin" },
      }),
      (err: unknown) =>
        err instanceof MediaTooLargeError &&
        err.limitOf === "homeserver (m.upload.size)" &&
        err.limit === 1_048_576,
    );
  });

  it("an avatar by URL is fetched and uploaded once for the room and a ghost", async () => {
    const pic = f.png(32, 32);
    files.serve("/avatar.png", pic, { contentType: "image/png" });
    const url = files.url("/avatar.png").href;
    await adapter.ctx!.setRoomInfo("lobby", { avatarUrl: url });
    await adapter.ctx!.setProfile("bob", { avatarUrl: url });
    await adapter.ctx!.setRoomInfo("lobby", { avatarUrl: url, topic: "again" });
    await bridge!.flush();
    const state = await alice.state(roomId, "m.room.avatar");
    const mxc = state?.url as string;
    assert.match(mxc, /^mxc:\/\/localhost\//);
    const profile = await poll(
      async () => {
        const p = await alice.request<{ avatar_url?: string }>(
          "GET",
          `/_matrix/client/v3/profile/${encodeURIComponent(`@media_bob:${DOMAIN}`)}`,
        );
        return p.avatar_url;
      },
      () => "bob's ghost has no avatar",
      15_000,
    );
    assert.equal(profile, mxc);
    assert.equal(files.hits.get("/avatar.png"), 1, "fetched once");
    assert.deepEqual(await download(mxc), pic);
  });
});
