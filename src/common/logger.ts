import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/**
 * Field names whose values are never written to a log, wherever they appear in a log
 * object (two levels deep). Tokens must not leak through a logged config, registration or
 * request, even by accident.
 */
export const REDACTED_KEYS = [
  "as_token",
  "hs_token",
  "access_token",
  "accessToken",
  "asToken",
  "hsToken",
  "password",
  "authorization",
  "Authorization",
  "token",
];

const REDACT_PATHS = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/** Masks `access_token=...` in a URL or free text before it is logged. */
export function redactText(text: string): string {
  return text.replace(/(access_token=)[^&\s"]+/gi, "$1***").replace(/(Bearer\s+)[^\s"]+/gi, "$1***");
}

/**
 * A structured JSON logger (pino) with token fields redacted. `destination` is for tests
 * that capture output; by default logs go to stdout.
 */
export function createLogger(
  opts: { level?: string; name?: string } = {},
  destination?: NodeJS.WritableStream,
): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    redact: { paths: REDACT_PATHS, censor: "***" },
  };
  if (opts.name !== undefined) options.name = opts.name;
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** A logger that writes nothing, for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
