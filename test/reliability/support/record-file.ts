/**
 * An append-only record file shared by a bridge child process (which writes) and the test
 * (which reads after the child is dead or stopped). Every line is written with one
 * `write(2)` on an O_APPEND descriptor and then `fdatasync`ed, so a SIGKILL can never leave
 * half a line, and a line that was written survives the process (and the machine).
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";

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

/**
 * Reads a record file as it grows (while a child writes it): each `read()` returns the
 * complete lines appended since the last one, so a test can follow the child's progress
 * every few milliseconds without reading the whole file again.
 */
export class RecordTail {
  private offset = 0;
  private rest = Buffer.alloc(0);

  constructor(readonly path: string) {}

  read(): string[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return [];
      const chunk = Buffer.alloc(size - this.offset);
      const got = readSync(fd, chunk, 0, chunk.length, this.offset);
      this.offset += got;
      const data = Buffer.concat([this.rest, chunk.subarray(0, got)]);
      const end = data.lastIndexOf(0x0a); // lines end at the last newline; the rest waits
      this.rest = data.subarray(end + 1);
      return end < 0 ? [] : data.subarray(0, end).toString("utf8").split("\n");
    } finally {
      closeSync(fd);
    }
  }
}
