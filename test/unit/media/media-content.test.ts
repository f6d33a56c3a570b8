import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { messageContent, editContent } from "../../../src/bridge/adapter-to-matrix.js";
import {
  describeSpooled,
  describeThumbnail,
  mediaInfo,
  msgtypeFor,
  withMedia,
} from "../../../src/media/media-content.js";
import type { SpooledFile } from "../../../src/media/spool.js";
import * as f from "../../support/media-fixtures.js";

const spooled = (head: Uint8Array, servedType?: string): SpooledFile => ({
  path: "/spool/x",
  sha256: "ab",
  size: 1234,
  head,
  ...(servedType !== undefined ? { servedType } : {}),
});

describe("msgtypeFor", () => {
  it("maps image, video and audio mimetypes, everything else to m.file", () => {
    assert.equal(msgtypeFor("image/png"), "m.image");
    assert.equal(msgtypeFor("video/webm"), "m.video");
    assert.equal(msgtypeFor("audio/ogg"), "m.audio");
    assert.equal(msgtypeFor("application/pdf"), "m.file");
    assert.equal(msgtypeFor("text/plain"), "m.file");
  });
});

describe("describeSpooled", () => {
  it("sniffs the mimetype and reads the image size when the adapter gave neither", () => {
    const m = describeSpooled({ source: new Uint8Array(), fileName: "a.png" }, spooled(f.png(12, 34)));
    assert.deepEqual(m, {
      path: "/spool/x",
      sha256: "ab",
      size: 1234,
      fileName: "a.png",
      mimetype: "image/png",
      width: 12,
      height: 34,
    });
  });

  it("prefers what the adapter said: mimetype, width/height, duration", () => {
    const m = describeSpooled(
      {
        source: new Uint8Array(),
        fileName: "v",
        mimetype: "video/mp4",
        width: 5,
        height: 6,
        durationMs: 7000,
      },
      spooled(f.png(12, 34)),
    );
    assert.equal(m.mimetype, "video/mp4");
    assert.deepEqual([m.width, m.height, m.durationMs], [5, 6, 7000]);
  });

  it("falls back to the served Content-Type, then to application/octet-stream", () => {
    const text = new TextEncoder().encode("plain words");
    assert.equal(
      describeSpooled({ source: new Uint8Array(), fileName: "t" }, spooled(text, "text/plain; charset=utf-8"))
        .mimetype,
      "text/plain",
    );
    assert.equal(
      describeSpooled({ source: new Uint8Array(), fileName: "t" }, spooled(text, "<bogus>")).mimetype,
      "application/octet-stream",
    );
    assert.equal(
      describeSpooled({ source: new Uint8Array(), fileName: "t" }, spooled(text)).mimetype,
      "application/octet-stream",
    );
  });
});

describe("describeThumbnail", () => {
  it("sniffs the mimetype and reads the size, or takes the adapter's, and refuses a non-image", () => {
    const thumb = describeThumbnail({ source: new Uint8Array() }, spooled(f.png(16, 9)), "cat.png");
    assert.deepEqual(thumb, {
      path: "/spool/x",
      sha256: "ab",
      size: 1234,
      mimetype: "image/png",
      width: 16,
      height: 9,
    });
    const told = describeThumbnail(
      { source: new Uint8Array(), mimetype: "image/avif", width: 3, height: 2 },
      spooled(new Uint8Array(8)),
      "cat.png",
    );
    assert.deepEqual([told.mimetype, told.width, told.height], ["image/avif", 3, 2]);
    assert.throws(
      () =>
        describeThumbnail(
          { source: new Uint8Array() },
          spooled(new TextEncoder().encode("%PDF-1.4")),
          "r.pdf",
        ),
      /the thumbnail of r\.pdf must be an image \(image\/\*\), got application\/pdf/,
    );
  });
});

describe("withMedia (captions per Matrix 1.10)", () => {
  const image = {
    path: "/p",
    sha256: "s",
    size: 10,
    fileName: "cat.png",
    mimetype: "image/png",
    width: 2,
    height: 3,
  };

  it("without a caption: body and filename are the file name; info has mimetype, size, w, h", () => {
    const c = messageContent(withMedia({ body: "" }, image, "mxc://x/1"));
    assert.deepEqual(c, {
      msgtype: "m.image",
      body: "cat.png",
      filename: "cat.png",
      url: "mxc://x/1",
      info: { mimetype: "image/png", size: 10, w: 2, h: 3 },
    });
    assert.equal(
      messageContent(withMedia({ body: "cat.png", html: "<b>x</b>" }, image, "mxc://x/1")).formatted_body,
      undefined,
    );
  });

  it("with a caption: body is the caption (html kept), filename the file name", () => {
    const c = messageContent(withMedia({ body: "look", html: "<i>look</i>" }, image, "mxc://x/1"));
    assert.equal(c.body, "look");
    assert.equal(c.filename, "cat.png");
    assert.equal(c.formatted_body, "<i>look</i>");
  });

  it("with a thumbnail: info.thumbnail_url and thumbnail_info (mimetype, size, w, h)", () => {
    const withThumb = {
      ...image,
      thumbnail: { path: "/t", sha256: "t", size: 4, mimetype: "image/jpeg", width: 1, height: 1 },
    };
    const c = messageContent(withMedia({ body: "" }, withThumb, "mxc://x/1", "mxc://x/thumb"));
    assert.deepEqual(c.info, {
      mimetype: "image/png",
      size: 10,
      w: 2,
      h: 3,
      thumbnail_url: "mxc://x/thumb",
      thumbnail_info: { mimetype: "image/jpeg", size: 4, w: 1, h: 1 },
    });
    const noDims = { ...image, thumbnail: { path: "/t", sha256: "t", size: 4, mimetype: "image/avif" } };
    assert.deepEqual(mediaInfo(noDims, "mxc://x/t").thumbnail_info, { mimetype: "image/avif", size: 4 });
    assert.equal(mediaInfo(noDims).thumbnail_url, undefined, "not uploaded: not named");
  });

  it("audio keeps its duration; an edit carries the media in m.new_content", () => {
    const audio = {
      path: "/p",
      sha256: "s",
      size: 5,
      fileName: "v.ogg",
      mimetype: "audio/ogg",
      durationMs: 4200,
    };
    assert.deepEqual(mediaInfo(audio), { mimetype: "audio/ogg", size: 5, duration: 4200 });
    const e = editContent(withMedia("", audio, "mxc://x/2"), "$t");
    assert.equal(e.body, "* v.ogg");
    assert.deepEqual((e["m.new_content"] as Record<string, unknown>).url, "mxc://x/2");
    assert.equal((e["m.new_content"] as Record<string, unknown>).msgtype, "m.audio");
  });
});
