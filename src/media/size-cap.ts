import { concatBytes } from "../common/bytes.js";
import { MediaTooLargeError } from "./errors.js";

/**
 * Passes bytes through and errors the stream (MediaTooLargeError) as soon as more than
 * `limitBytes` went by; the source is then cancelled by the pipe.
 */
export function sizeCap(media: string, limitBytes: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limitBytes)
        controller.error(new MediaTooLargeError(media, undefined, limitBytes, "bridge (media.maxBytes)"));
      else controller.enqueue(chunk);
    },
  });
}

/** Reads a stream whole into memory. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  return concatBytes(chunks, size);
}
