/**
 * The mimetype of a file from its first bytes (magic numbers). Pure: no I/O. Knows PNG,
 * JPEG, GIF, WebP, MP4/MOV, WebM/MKV, Ogg, MP3, WAV, FLAC, PDF and ZIP; anything else is
 * application/octet-stream. 64 bytes are enough for every format here.
 */
export const OCTET_STREAM = "application/octet-stream";

function ascii(b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

function bytesAt(b: Uint8Array, at: number, bytes: number[]): boolean {
  return b.length >= at + bytes.length && bytes.every((x, i) => b[at + i] === x);
}

/** True when the head of a Matroska file names "webm" as its DocType. */
function isWebm(b: Uint8Array): boolean {
  const end = Math.min(b.length, 64);
  for (let i = 4; i + 4 <= end; i++) if (ascii(b, i, "webm")) return true;
  return false;
}

export function sniffMimetype(head: Uint8Array): string {
  const b = head;
  if (bytesAt(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (bytesAt(b, 0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (ascii(b, 0, "GIF87a") || ascii(b, 0, "GIF89a")) return "image/gif";
  if (ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) return "image/webp";
  if (ascii(b, 0, "RIFF") && ascii(b, 8, "WAVE")) return "audio/wav";
  if (ascii(b, 4, "ftyp")) return ascii(b, 8, "qt  ") ? "video/quicktime" : "video/mp4";
  if (ascii(b, 4, "moov") || ascii(b, 4, "mdat") || ascii(b, 4, "wide")) return "video/quicktime";
  if (bytesAt(b, 0, [0x1a, 0x45, 0xdf, 0xa3])) return isWebm(b) ? "video/webm" : "video/x-matroska";
  if (ascii(b, 0, "OggS")) return "audio/ogg";
  if (ascii(b, 0, "fLaC")) return "audio/flac";
  if (ascii(b, 0, "ID3")) return "audio/mpeg";
  // An MPEG audio frame: 11 sync bits, a layer that is not "reserved" (00).
  if (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x06) !== 0) return "audio/mpeg";
  if (ascii(b, 0, "%PDF-")) return "application/pdf";
  if (
    bytesAt(b, 0, [0x50, 0x4b, 0x03, 0x04]) ||
    bytesAt(b, 0, [0x50, 0x4b, 0x05, 0x06]) ||
    bytesAt(b, 0, [0x50, 0x4b, 0x07, 0x08])
  )
    return "application/zip";
  return OCTET_STREAM;
}
