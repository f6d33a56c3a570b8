/**
 * Splitting text into IRC lines. An IRC line is at most 512 bytes including the sender's
 * prefix the server adds and the CRLF, so a long message must become several lines, each cut
 * on a UTF-8 character boundary (never inside a grapheme cluster when one fits) and, where
 * possible, at a space.
 *
 * Pure functions: no I/O.
 */

const encoder = new TextEncoder();
const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The number of UTF-8 bytes of `text`. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/**
 * Splits `text` into pieces of at most `maxBytes` UTF-8 bytes each. Line breaks (`\n`,
 * `\r\n`, `\r`) always end a piece and empty lines are dropped (IRC cannot send them); NUL
 * characters are removed. A line longer than `maxBytes` is cut at its last space that fits
 * (the space itself is dropped), or, with no space, between grapheme clusters (between code
 * points only for a single cluster longer than `maxBytes`). So joining the pieces of one
 * over-long line with " " (where cut at a space) or "" (elsewhere) gives the line back.
 * Throws a RangeError if `maxBytes` is below 4 (one code point might not fit).
 */
export function splitMessage(text: string, maxBytes: number): string[] {
  if (!Number.isInteger(maxBytes) || maxBytes < 4) {
    throw new RangeError(`maxBytes must be an integer of at least 4, got ${maxBytes}`);
  }
  const out: string[] = [];
  for (const line of text.replace(/\0/g, "").split(/\r\n|\r|\n/)) {
    if (line === "") continue;
    out.push(...splitLine(line, maxBytes));
  }
  return out;
}

function splitLine(line: string, maxBytes: number): string[] {
  if (utf8Length(line) <= maxBytes) return [line];
  const pieces: string[] = [];
  let current = "";
  let currentBytes = 0;
  // Position in `current` just before its last space, and the byte count up to there.
  let lastSpace = -1;
  let lastSpaceBytes = 0;
  const flushAtSpaceOrAll = (): void => {
    if (lastSpace > 0) {
      pieces.push(current.slice(0, lastSpace));
      current = current.slice(lastSpace + 1);
      currentBytes -= lastSpaceBytes + 1;
    } else {
      pieces.push(current);
      current = "";
      currentBytes = 0;
    }
    lastSpace = current.lastIndexOf(" ");
    lastSpaceBytes = lastSpace >= 0 ? utf8Length(current.slice(0, lastSpace)) : 0;
  };
  for (const { segment } of segmenter.segment(line)) {
    const units = utf8Length(segment) > maxBytes ? [...segment] : [segment];
    for (const unit of units) {
      const bytes = utf8Length(unit);
      if (currentBytes + bytes > maxBytes) {
        // A space that would start the next piece is the cut itself: drop it.
        if (unit === " ") {
          pieces.push(current);
          current = "";
          currentBytes = 0;
          lastSpace = -1;
          continue;
        }
        flushAtSpaceOrAll();
        while (currentBytes + bytes > maxBytes) flushAtSpaceOrAll();
      }
      if (unit === " ") {
        lastSpace = current.length;
        lastSpaceBytes = currentBytes;
      }
      current += unit;
      currentBytes += bytes;
    }
  }
  if (current !== "") pieces.push(current);
  return pieces;
}
