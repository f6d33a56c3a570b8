/**
 * The homeserver's largest upload (`m.upload.size`), asked once and kept for an hour; when
 * the homeserver cannot be asked (down, or it does not say), the limit is unknown for a
 * minute and nothing is refused for it.
 */
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";

const KNOWN_MS = 3_600_000;
const UNKNOWN_MS = 60_000;

export class UploadLimit {
  private cached: { value: number | undefined; until: number } | undefined;
  private asking: Promise<number | undefined> | undefined;

  constructor(
    private readonly client: Pick<HomeserverClient, "mediaConfig">,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Bytes, or undefined when the homeserver did not say. */
  async get(): Promise<number | undefined> {
    if (this.cached && this.cached.until > this.now()) return this.cached.value;
    this.asking ??= this.ask().finally(() => (this.asking = undefined));
    return this.asking;
  }

  private async ask(): Promise<number | undefined> {
    let value: number | undefined;
    try {
      const size = (await this.client.mediaConfig({ attempts: 1 }))["m.upload.size"];
      value = typeof size === "number" && Number.isSafeInteger(size) && size > 0 ? size : undefined;
    } catch (err) {
      this.log.debug(
        { err: String(err) },
        "could not read the homeserver's media config; upload limit unknown",
      );
    }
    this.cached = { value, until: this.now() + (value === undefined ? UNKNOWN_MS : KNOWN_MS) };
    return value;
  }
}
