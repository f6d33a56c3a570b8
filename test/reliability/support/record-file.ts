/**
 * An append-only record file shared by a bridge child process (which writes) and the test
 * (which reads after the child is dead or stopped). Every line is written with one
 * `write(2)` on an O_APPEND descriptor and then `fdatasync`ed, so a SIGKILL can never leave
 * half a line, and a line that was written survives the process (and the machine).
 */
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, writeSync } from "node:fs";

export class RecordFile {
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, "a");
  }

  /** Appends one line (must not contain a newline) and makes it durable before returning. */
  append(line: string): void {
    if (line.includes("\n"))
      throw new Error(`record line must not contain a newline: ${JSON.stringify(line)}`);
    writeSync(this.fd, `${line}\n`);
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The complete lines of a record file; [] if it does not exist yet. */
export function readRecords(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  lines.pop(); // the text after the last newline: empty, or (never expected) a torn line
  return lines;
}
