import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imageDimensions, sniffMimetype } from "../../../src/media/index.js";
import * as f from "../../support/media-fixtures.js";

describe("sniffMimetype", () => {
  it("knows the images by their magic bytes", () => {
    assert.equal(sniffMimetype(f.png(1, 1)), "image/png");
    assert.equal(sniffMimetype(f.jpeg(1, 1)), "image/jpeg");
    assert.equal(sniffMimetype(f.gif(1, 1)), "image/gif");
    assert.equal(sniffMimetype(f.webpLossy(1, 1)), "image/webp");
    assert.equal(sniffMimetype(f.webpExtended(1, 1)), "image/webp");
  });

  it("knows video, audio, PDF and ZIP", () => {
    for (const [type, head] of Object.entries(f.others)) assert.equal(sniffMimetype(head), type, type);
    assert.equal(sniffMimetype(f.wav()), "audio/wav");
    assert.equal(sniffMimetype(f.mp3Frame), "audio/mpeg");
  });

  it("gives application/octet-stream for anything else, short or empty input included", () => {
    for (const head of [
      new Uint8Array(0),
      Uint8Array.of(0x89),
      new TextEncoder().encode("hello world"),
      Uint8Array.of(0xff, 0xe1),
    ])
      assert.equal(sniffMimetype(head), "application/octet-stream");
    // RIFF of another kind (AVI) is neither WebP nor WAV
    assert.equal(sniffMimetype(new TextEncoder().encode("RIFF\0\0\0\0AVI LIST")), "application/octet-stream");
  });
});

describe("imageDimensions", () => {
  it("reads PNG, GIF and the three WebP variants", () => {
    assert.deepEqual(imageDimensions(f.png(640, 480), "image/png"), { width: 640, height: 480 });
    assert.deepEqual(imageDimensions(f.gif(300, 2), "image/gif"), { width: 300, height: 2 });
    assert.deepEqual(imageDimensions(f.webpLossy(1024, 768), "image/webp"), { width: 1024, height: 768 });
    assert.deepEqual(imageDimensions(f.webpLossless(4000, 3001), "image/webp"), {
      width: 4000,
      height: 3001,
    });
    assert.deepEqual(imageDimensions(f.webpExtended(70000, 3), "image/webp"), { width: 70000, height: 3 });
  });

  it("walks JPEG segments to the frame header, past a large EXIF block", () => {
    assert.deepEqual(imageDimensions(f.jpeg(1920, 1080), "image/jpeg"), { width: 1920, height: 1080 });
    assert.deepEqual(imageDimensions(f.jpeg(33, 44, 40_000), "image/jpeg"), { width: 33, height: 44 });
  });

  it("is undefined for a cut header, another format, or a zero size", () => {
    assert.equal(imageDimensions(f.png(1, 1).subarray(0, 20), "image/png"), undefined);
    assert.equal(imageDimensions(f.jpeg(10, 10).subarray(0, 30), "image/jpeg"), undefined);
    assert.equal(imageDimensions(f.png(10, 10), "application/pdf"), undefined);
    assert.equal(imageDimensions(f.gif(0, 5), "image/gif"), undefined);
    assert.equal(imageDimensions(f.png(10, 10), "image/jpeg"), undefined);
  });
});
