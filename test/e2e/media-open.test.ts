// Matrix -> remote files on the real Synapse (issue #16): an in-process Bridge whose adapter
// reads every file it is handed through ctx.openMedia. A Matrix user uploads a file with the
// client-server API and sends m.file (a caption as body, the name as filename) in a portal:
// the adapter's MatrixMessage.file carries the name, mimetype and size, and openMedia (through
// Synapse's authenticated media API) gives the very bytes uploaded; ctx.downloadMedia too. A
// file over media.maxBytes is refused with the clear "too large: more than N bytes" error. An image's
// thumbnail comes from Synapse's thumbnail endpoint; an encrypted attachment is decrypted, and so
// is the sender's encrypted thumbnail (info.thumbnail_file).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BridgeContext, MatrixMessage, RemoteNetworkAdapter } from "../../src/adapter/adapter.js";
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { MediaTooLargeError } from "../../src/media/errors.js";
import { readAll } from "../../src/media/size-cap.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { encryptAttachment } from "../support/encrypted-attachment.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";

/** A `size`x`size` RGB PNG of a gradient (something Synapse can thumbnail). */
function png(size: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) rows.set([x * 4, y * 4, 128], y * (1 + size * 3) + 1 + x * 3);
  }
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Uint8Array(
    Buffer.concat([
      signature,
      chunk("IHDR", ihdr),
      chunk("IDAT", deflateSync(rows)),
      chunk("IEND", Buffer.alloc(0)),
    ]),
  );
}
const MAX_BYTES = 300_000;

/** What the adapter saw of one message and read of its file. */
interface Received {
  message: MatrixMessage;
  opened?: { bytes: Uint8Array; contentType: string; size?: number };
  downloaded?: Uint8Array;
  thumbnail?: { bytes: Uint8Array; contentType: string };
  /** The sender's own thumbnail (file.thumbnail), opened. */
  senderThumbnail?: { bytes: Uint8Array; contentType: string };
  error?: unknown;
}

function filesAdapter(received: Received[]): RemoteNetworkAdapter {
  let ctx: BridgeContext | undefined;
  return {
    name: "files",
    start(c) {
      ctx = c;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    queryRoom: (id) => Promise.resolve({ name: `Files ${id}`, visibility: "public" as const }),
    queryUser: (id) => Promise.resolve({ displayName: id }),
    async onMessage(message) {
      const got: Received = { message };
      if (message.file) {
        try {
          const opened = await ctx!.openMedia(message.file);
          got.opened = { bytes: await readAll(opened.stream), contentType: opened.contentType };
          if (opened.size !== undefined) got.opened.size = opened.size;
          got.downloaded = (await ctx!.downloadMedia(message.file.url)).data;
          if (message.file.thumbnail) {
            const own = await ctx!.openMedia(message.file.thumbnail);
            got.senderThumbnail = { bytes: await readAll(own.stream), contentType: own.contentType };
          }
          if (message.msgtype === "m.image") {
            const thumb = await ctx!.openMedia(message.file, { thumbnail: { width: 32, height: 32 } });
            got.thumbnail = { bytes: await readAll(thumb.stream), contentType: thumb.contentType };
          }
        } catch (err) {
          got.error = err;
          // Relayed by a real adapter, the error goes out of the handler: the sender is told.
          if (err instanceof MediaTooLargeError && message.body === "big.bin") {
            received.push(got);
            throw err;
          }
        }
      }
      received.push(got);
    },
  };
}

describe("Matrix files reach the adapter through ctx.openMedia on Synapse", () => {
  let dir: string;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  let alice: MatrixUser;
  let aliceToken: string;
  let room = "";
  const received: Received[] = [];

  /** Uploads bytes as Alice (the plain client-server API); resolves with the mxc:// URL. */
  async function upload(data: Uint8Array, contentType: string, filename: string): Promise<string> {
    const res = await fetch(
      `${synapse!.url}/_matrix/media/v3/upload?filename=${encodeURIComponent(filename)}`,
      {
        method: "POST",
        headers: { Authorization: `Bearer ${aliceToken}`, "Content-Type": contentType },
        body: data,
      },
    );
    const body = (await res.json()) as { content_uri?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.content_uri!;
  }

  const receivedFor = (eventId: string) =>
    poll(
      () => Promise.resolve(received.find((r) => r.message.eventId === eventId)),
      () => `the adapter never got ${eventId}; got ${received.map((r) => r.message.eventId).join(", ")}`,
      30_000,
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-media-open-"));
    const port = await freePort();
    reg = generateRegistration({
      id: "media-open",
      url: `http://127.0.0.1:${port}`,
      domain: DOMAIN,
      senderLocalpart: "filesbot",
      ghosts: "files_{id}",
      portals: "files_{id}",
    });
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    const configPath = join(dir, "config.yaml");
    await writeFile(
      configPath,
      [
        `homeserver: { url: "${synapse.url}", domain: ${DOMAIN} }`,
        `appservice: { host: 127.0.0.1, port: ${port} }`,
        "store: sqlite://data/files.db",
        "bridge: { ghosts: 'files_{id}', portals: 'files_{id}' }",
        'adapter: { module: "./unused" }',
        `media: { maxBytes: ${MAX_BYTES} }`,
      ].join("\n"),
    );
    bridge = await Bridge.fromConfig(await loadConfig(configPath, {}), {
      registration: reg,
      adapter: filesAdapter(received),
      logger: silentLogger(),
    });
    await bridge.start();
    const user = await synapse.registerUser("alice");
    aliceToken = user.accessToken;
    alice = new MatrixUser(synapse.url, user.userId, user.accessToken);
    room = await alice.join(`#files_shared:${DOMAIN}`);
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the adapter the file's metadata and the same bytes through openMedia and downloadMedia", async () => {
    const data = new Uint8Array(randomBytes(150_000));
    const url = await upload(data, "application/pdf", "report.pdf");
    const eventId = await alice.sendContent(room, {
      msgtype: "m.file",
      body: "the report, as promised",
      filename: "report.pdf",
      url,
      info: { mimetype: "application/pdf", size: data.length },
    });
    const got = await receivedFor(eventId);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.message.msgtype, "m.file");
    assert.equal(got.message.body, "the report, as promised", "the body is the caption");
    assert.deepEqual(got.message.file, {
      url,
      name: "report.pdf",
      mimetype: "application/pdf",
      size: data.length,
      encrypted: false,
    });
    assert.equal(got.opened?.contentType, "application/pdf");
    assert.equal(got.opened?.size, data.length, "Synapse said the size");
    assert.ok(Buffer.from(got.opened.bytes).equals(Buffer.from(data)), "openMedia gave the uploaded bytes");
    assert.ok(Buffer.from(got.downloaded!).equals(Buffer.from(data)), "downloadMedia gave them too");
  });

  it("refuses a file over media.maxBytes with the clear error, and the bridge goes on", async () => {
    const url = await upload(new Uint8Array(MAX_BYTES + 1), "application/octet-stream", "big.bin");
    const eventId = await alice.sendContent(room, {
      msgtype: "m.file",
      body: "big.bin",
      url,
      info: { size: MAX_BYTES + 1 },
    });
    const got = await receivedFor(eventId);
    assert.equal(got.message.file?.name, "big.bin");
    assert.ok(got.error instanceof MediaTooLargeError, `a MediaTooLargeError, got ${String(got.error)}`);
    assert.equal(
      got.error.message,
      `${url} is too large: more than ${MAX_BYTES} bytes; the bridge (media.maxBytes) allows ${MAX_BYTES}`,
    );
    assert.equal(got.opened, undefined);
    const notice = await alice.waitForEvent(
      room,
      (e) => e.content.msgtype === "m.notice" && e.content["m.relates_to"] !== undefined,
      "the notice to the sender",
    );
    assert.equal(
      notice.content.body,
      `not bridged: the file is too large (over ${(MAX_BYTES / 1000).toFixed(0)} kB; the bridge takes at most ${(MAX_BYTES / 1000).toFixed(0)} kB)`,
    );

    const small = await upload(new TextEncoder().encode("still fine"), "text/plain", "ok.txt");
    const next = await receivedFor(
      await alice.sendContent(room, { msgtype: "m.file", body: "ok.txt", url: small }),
    );
    assert.equal(new TextDecoder().decode(next.opened!.bytes), "still fine");
    assert.equal(next.opened!.contentType.split(";")[0], "text/plain");
  });

  it("gives a thumbnail of an image through the authenticated thumbnail endpoint", async () => {
    const image = png(400);
    const url = await upload(image, "image/png", "gradient.png");
    const eventId = await alice.sendContent(room, {
      msgtype: "m.image",
      body: "gradient.png",
      url,
      info: { mimetype: "image/png", size: image.length, w: 400, h: 400 },
    });
    const got = await receivedFor(eventId);
    assert.equal(got.error, undefined, String(got.error));
    assert.deepEqual([got.message.file?.width, got.message.file?.height], [400, 400]);
    assert.ok(Buffer.from(got.opened!.bytes).equals(Buffer.from(image)));
    const thumb = got.thumbnail!;
    assert.equal(thumb.contentType, "image/png", "Synapse thumbnails a PNG as a PNG");
    assert.ok(!Buffer.from(thumb.bytes).equals(Buffer.from(image)), "a scaled copy, not the original");
    const view = Buffer.from(thumb.bytes);
    assert.equal(view.subarray(12, 16).toString("ascii"), "IHDR");
    const [w, h] = [view.readUInt32BE(16), view.readUInt32BE(20)];
    assert.ok(w < 400 && h < 400 && w > 0 && w === h, `scaled down, got ${w}x${h}`);
  });

  it("opens the sender's encrypted thumbnail (info.thumbnail_file) decrypted", async () => {
    const video = encryptAttachment(new Uint8Array(randomBytes(20_000)));
    const preview = png(24);
    const thumb = encryptAttachment(preview);
    const file = { url: await upload(video.cipher, "application/octet-stream", ""), ...video.encryption };
    const thumbnailFile = {
      url: await upload(thumb.cipher, "application/octet-stream", ""),
      ...thumb.encryption,
    };
    const eventId = await alice.sendContent(room, {
      msgtype: "m.video",
      body: "clip.mp4",
      file,
      info: {
        mimetype: "video/mp4",
        size: 20_000,
        thumbnail_file: thumbnailFile,
        thumbnail_info: { mimetype: "image/png", size: preview.length, w: 24, h: 24 },
      },
    });
    const got = await receivedFor(eventId);
    assert.equal(got.error, undefined, String(got.error));
    assert.deepEqual(got.message.file?.thumbnail, {
      url: thumbnailFile.url,
      encrypted: true,
      encryption: thumbnailFile,
      mimetype: "image/png",
      size: preview.length,
      width: 24,
      height: 24,
    });
    assert.equal(got.senderThumbnail?.contentType, "image/png");
    assert.ok(
      Buffer.from(got.senderThumbnail.bytes).equals(Buffer.from(preview)),
      "the thumbnail's plaintext",
    );
  });

  it("decrypts an encrypted attachment (the content's file) as it streams", async () => {
    const plain = new Uint8Array(randomBytes(70_000));
    const { cipher, encryption } = encryptAttachment(plain);
    const url = await upload(cipher, "application/octet-stream", "");
    const file = { url, ...encryption };
    const eventId = await alice.sendContent(room, {
      msgtype: "m.file",
      body: "secret.bin",
      file,
      info: { mimetype: "application/x-secret", size: plain.length },
    });
    const got = await receivedFor(eventId);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.message.file?.encrypted, true);
    assert.deepEqual(got.message.file?.encryption, file);
    assert.equal(got.opened?.contentType, "application/x-secret");
    assert.ok(Buffer.from(got.opened.bytes).equals(Buffer.from(plain)), "the plaintext");
    assert.ok(
      Buffer.from(got.downloaded!).equals(Buffer.from(cipher)),
      "downloadMedia of the url gives the ciphertext",
    );
  });
});
