/** Tiny but real file headers, built byte by byte, for the media tests. */
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
const be16 = (n: number) => [n >> 8, n & 0xff];
const be32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const le16 = (n: number) => [n & 0xff, n >> 8];
const le24 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
const le32 = (n: number) => [...le16(n & 0xffff), ...le16(n >>> 16)];

function bytes(...parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

export function png(width: number, height: number): Uint8Array {
  return bytes(
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    be32(13),
    ascii("IHDR"),
    be32(width),
    be32(height),
    [8, 6, 0, 0, 0],
    be32(0), // CRC (not checked)
    be32(0),
    ascii("IEND"),
    be32(0),
  );
}

/** A JFIF JPEG: APP0, an EXIF-like APP1 of `app1Bytes`, a DQT, then the SOF0 with the size. */
export function jpeg(width: number, height: number, app1Bytes = 0): Uint8Array {
  const app1 =
    app1Bytes > 0 ? [0xff, 0xe1, ...be16(app1Bytes + 2), ...new Array<number>(app1Bytes).fill(0)] : [];
  return bytes(
    [0xff, 0xd8],
    [0xff, 0xe0, ...be16(16), ...ascii("JFIF"), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0],
    app1,
    [0xff, 0xdb, ...be16(3), 0],
    [0xff, 0xc0, ...be16(17), 8, ...be16(height), ...be16(width), 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1],
    [0xff, 0xd9],
  );
}

export function gif(width: number, height: number): Uint8Array {
  return bytes(ascii("GIF89a"), le16(width), le16(height), [0, 0, 0], ascii(";"));
}

function riff(kind: string, chunk: string, payload: number[]): Uint8Array {
  return bytes(
    ascii("RIFF"),
    le32(4 + 8 + payload.length),
    ascii(kind),
    ascii(chunk),
    le32(payload.length),
    payload,
  );
}

export function webpLossy(width: number, height: number): Uint8Array {
  return riff("WEBP", "VP8 ", [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, ...le16(width), ...le16(height), 0, 0]);
}

export function webpLossless(width: number, height: number): Uint8Array {
  const w = width - 1;
  const h = height - 1;
  return riff("WEBP", "VP8L", [
    0x2f,
    w & 0xff,
    ((w >> 8) & 0x3f) | ((h & 0x03) << 6),
    (h >> 2) & 0xff,
    (h >> 10) & 0x0f,
    0,
    0,
  ]);
}

export function webpExtended(width: number, height: number): Uint8Array {
  return riff("WEBP", "VP8X", [0, 0, 0, 0, ...le24(width - 1), ...le24(height - 1)]);
}

export function wav(): Uint8Array {
  return riff("WAVE", "fmt ", new Array<number>(16).fill(0));
}

export const others: Record<string, Uint8Array> = {
  "video/mp4": bytes(be32(24), ascii("ftypisom"), be32(512), ascii("isomiso2")),
  "video/quicktime": bytes(be32(20), ascii("ftypqt  "), be32(0), ascii("qt  ")),
  "video/webm": bytes(
    [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84],
    ascii("webm"),
  ),
  "video/x-matroska": bytes(
    [0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x88],
    ascii("matroska"),
  ),
  "audio/ogg": bytes(ascii("OggS"), [0, 2], new Array<number>(20).fill(0), ascii("OpusHead")),
  "audio/mpeg": bytes(ascii("ID3"), [4, 0, 0, 0, 0, 0, 0]),
  "audio/flac": bytes(ascii("fLaC"), [0, 0, 0, 34]),
  "application/pdf": bytes(ascii("%PDF-1.7\n")),
  "application/zip": bytes([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0]),
};

/** An MPEG-1 layer III frame header without an ID3 tag. */
export const mp3Frame = bytes([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]);
