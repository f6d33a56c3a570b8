// MatrixMessage.file: what classifyEvent gives the adapter for m.image, m.file, m.audio,
// m.video and m.sticker (name, caption, info, encrypted attachments), and nothing otherwise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyEvent } from "../../../src/bridge/matrix-to-adapter.js";
import type { MatrixMessage } from "../../../src/adapter/adapter.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";

const sender = { userId: "@alice:e.org", displayName: "Alice" };

function message(type: string, content: Record<string, unknown>): MatrixMessage {
  const event: MatrixEvent = {
    event_id: "$e",
    type,
    room_id: "!r:e.org",
    sender: "@alice:e.org",
    origin_server_ts: 1000,
    content,
  };
  const c = classifyEvent(event, sender, () => undefined);
  assert.ok(c.kind === "message", `a message, got ${c.kind}`);
  return c.message;
}

const ENCRYPTED = {
  url: "mxc://e.org/cipher",
  v: "v2",
  key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: "A".repeat(43), ext: true },
  iv: "AAAAAAAAAAAAAAAAAAAAAA",
  hashes: { sha256: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU" },
};

describe("MatrixMessage.file", () => {
  it("gives an image's url, name, mimetype, size, dimensions and thumbnail", () => {
    const m = message("m.room.message", {
      msgtype: "m.image",
      body: "cat.png",
      url: "mxc://e.org/cat",
      info: {
        mimetype: "image/png",
        size: 1234,
        w: 640,
        h: 480,
        thumbnail_url: "mxc://e.org/thumb",
        thumbnail_info: { mimetype: "image/jpeg", size: 321, w: 64, h: 48 },
      },
    });
    assert.deepEqual(m.file, {
      url: "mxc://e.org/cat",
      name: "cat.png",
      mimetype: "image/png",
      size: 1234,
      width: 640,
      height: 480,
      thumbnail: {
        url: "mxc://e.org/thumb",
        encrypted: false,
        mimetype: "image/jpeg",
        size: 321,
        width: 64,
        height: 48,
      },
      thumbnailUrl: "mxc://e.org/thumb",
      encrypted: false,
    });
    assert.equal(m.mediaUrl, "mxc://e.org/cat", "mediaUrl stays as it was");
    assert.equal(m.body, "cat.png");
  });

  it("names the file by filename when there is one; the body is then the caption", () => {
    const m = message("m.room.message", {
      msgtype: "m.file",
      body: "the report, as promised",
      filename: "report.pdf",
      url: "mxc://e.org/report",
      info: { mimetype: "application/pdf", size: 99 },
    });
    assert.equal(m.file?.name, "report.pdf");
    assert.equal(m.body, "the report, as promised");
    const same = message("m.room.message", {
      msgtype: "m.file",
      body: "report.pdf",
      filename: "report.pdf",
      url: "mxc://e.org/report",
    });
    assert.equal(same.file?.name, "report.pdf");
    assert.equal(same.file?.size, undefined, "no info: no size");
  });

  it("gives audio and video durations, and a sticker's file", () => {
    const audio = message("m.room.message", {
      msgtype: "m.audio",
      body: "voice.ogg",
      url: "mxc://e.org/voice",
      info: { mimetype: "audio/ogg", duration: 4200 },
    });
    assert.equal(audio.file?.durationMs, 4200);
    const video = message("m.room.message", {
      msgtype: "m.video",
      body: "clip.mp4",
      url: "mxc://e.org/clip",
      info: { duration: 10_000, w: 1920, h: 1080, size: "big" },
    });
    assert.deepEqual(
      [video.file?.durationMs, video.file?.width, video.file?.height, video.file?.size],
      [10_000, 1920, 1080, undefined],
      "a size that is not a number is left out",
    );
    const sticker = message("m.sticker", {
      body: "a waving cat",
      url: "mxc://e.org/sticker",
      info: { mimetype: "image/webp", w: 256, h: 256 },
    });
    assert.equal(sticker.msgtype, "m.sticker");
    assert.equal(sticker.file?.url, "mxc://e.org/sticker");
    assert.equal(sticker.file?.name, "a waving cat");
  });

  it("gives an encrypted attachment's file.url and its keys, and its encrypted thumbnail's", () => {
    const thumbnailFile = { ...ENCRYPTED, url: "mxc://e.org/thumbcipher", iv: "AAAAAAAAAAEAAAAAAAAAAA" };
    const m = message("m.room.message", {
      msgtype: "m.image",
      body: "secret.jpg",
      file: ENCRYPTED,
      info: {
        mimetype: "image/jpeg",
        size: 10,
        thumbnail_file: thumbnailFile,
        thumbnail_info: { mimetype: "image/png", size: 5, w: 8, h: "six" },
      },
    });
    assert.equal(m.file?.url, "mxc://e.org/cipher");
    assert.equal(m.file?.encrypted, true);
    assert.deepEqual(m.file?.encryption, ENCRYPTED);
    assert.deepEqual(m.file?.thumbnail, {
      url: "mxc://e.org/thumbcipher",
      encrypted: true,
      encryption: thumbnailFile,
      mimetype: "image/png",
      size: 5,
      width: 8,
    });
    assert.equal(m.file?.thumbnailUrl, undefined, "only an unencrypted thumbnail has a thumbnailUrl");
    assert.equal(m.mediaUrl, undefined);
  });

  it("gives no thumbnail when there is none, or when thumbnail_file has no url", () => {
    const none = message("m.room.message", { msgtype: "m.image", body: "a.png", url: "mxc://e.org/a" });
    assert.equal(none.file?.thumbnail, undefined);
    const broken = message("m.room.message", {
      msgtype: "m.image",
      body: "a.png",
      url: "mxc://e.org/a",
      info: { thumbnail_file: { v: "v2" }, thumbnail_info: { w: 1, h: 1 } },
    });
    assert.equal(broken.file?.thumbnail, undefined);
    assert.equal(broken.file?.thumbnailUrl, undefined);
  });

  it("gives no file for text, or for a media message without any url", () => {
    assert.equal(
      message("m.room.message", { msgtype: "m.text", body: "hi", url: "mxc://e.org/x" }).file,
      undefined,
    );
    assert.equal(message("m.room.message", { msgtype: "m.notice", body: "hi" }).file, undefined);
    assert.equal(message("m.room.message", { msgtype: "m.image", body: "lost.png" }).file, undefined);
    assert.equal(
      message("m.room.message", { msgtype: "m.file", body: "x", file: { v: "v2" } }).file,
      undefined,
    );
  });
});
