/**
 * An image's width and height from its header: PNG, JPEG, GIF and WebP. Pure: no I/O.
 * Undefined when the header is not one of those, is cut short, or says 0.
 */
export interface Dimensions {
  width: number;
  height: number;
}

const be16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const le16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const le24 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
const be32 = (b: Uint8Array, at: number) => ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | be16(b, at + 2));

function tag(b: Uint8Array, at: number): string {
  return String.fromCharCode(...b.subarray(at, at + 4));
}

function png(b: Uint8Array): Dimensions | undefined {
  if (b.length < 24 || tag(b, 12) !== "IHDR") return undefined;
  return { width: be32(b, 16), height: be32(b, 20) };
}

function gif(b: Uint8Array): Dimensions | undefined {
  return b.length < 10 ? undefined : { width: le16(b, 6), height: le16(b, 8) };
}

/** Walks the JPEG segments to the first start-of-frame (SOF0-SOF15 but DHT, JPG, DAC). */
function jpeg(b: Uint8Array): Dimensions | undefined {
  let at = 2;
  while (at + 9 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return { height: be16(b, at + 5), width: be16(b, at + 7) };
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2; // markers without a length
      continue;
    }
    at += 2 + be16(b, at + 2);
  }
  return undefined;
}

function webp(b: Uint8Array): Dimensions | undefined {
  if (b.length < 25) return undefined;
  const chunk = tag(b, 12);
  if (chunk === "VP8L" && b[20] === 0x2f) {
    const [b1, b2, b3, b4] = [b[21]!, b[22]!, b[23]!, b[24]!];
    return {
      width: 1 + (b1 | ((b2 & 0x3f) << 8)),
      height: 1 + ((b2 >> 6) | (b3 << 2) | ((b4 & 0x0f) << 10)),
    };
  }
  if (b.length < 30) return undefined;
  if (chunk === "VP8 " && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a)
    return { width: le16(b, 26) & 0x3fff, height: le16(b, 28) & 0x3fff };
  if (chunk === "VP8L" && b[20] === 0x2f) {
    const [b1, b2, b3, b4] = [b[21]!, b[22]!, b[23]!, b[24]!];
    return {
      width: 1 + (b1 | ((b2 & 0x3f) << 8)),
      height: 1 + ((b2 >> 6) | (b3 << 2) | ((b4 & 0x0f) << 10)),
    };
  }
  if (chunk === "VP8X") return { width: 1 + le24(b, 24), height: 1 + le24(b, 27) };
  return undefined;
}

const readers: Record<string, (b: Uint8Array) => Dimensions | undefined> = {
  "image/png": png,
  "image/gif": gif,
  "image/jpeg": jpeg,
  "image/webp": webp,
};

/** The dimensions in `head` (the file's first bytes) for an image of this mimetype. */
export function imageDimensions(head: Uint8Array, mimetype: string): Dimensions | undefined {
  const found = readers[mimetype]?.(head);
  return found && found.width > 0 && found.height > 0 ? found : undefined;
}
