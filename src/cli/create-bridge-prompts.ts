/**
 * create-bridge's questions on a terminal. Lines are read with node:readline's `line` events
 * into a queue rather than with `question()`, so answers typed (or pasted) ahead of their
 * question are kept, not dropped.
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { UsageError } from "./command.js";
import { checkAnswer, QUESTIONS, type ProjectAnswers } from "./create-bridge-options.js";

/** Thrown when input ends (Ctrl-D, a closed stream) before every question was answered. */
export class PromptAborted extends Error {
  override readonly name = "PromptAborted";
}

/** Reads lines on demand; `next()` rejects with PromptAborted once the input ended. */
class LineQueue {
  private readonly lines: string[] = [];
  private waiting: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  private closed = false;
  private readonly rl;

  constructor(input: Readable) {
    this.rl = createInterface({ input, terminal: false, crlfDelay: Infinity });
    this.rl.on("line", (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(line);
      } else if (this.lines.length < 100) {
        this.lines.push(line); // typed ahead; more than 100 lines ahead are not answers
      }
    });
    this.rl.on("close", () => {
      this.closed = true;
      this.waiting?.reject(new PromptAborted("input ended before every question was answered"));
      this.waiting = undefined;
    });
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.closed)
      return Promise.reject(new PromptAborted("input ended before every question was answered"));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  close(): void {
    this.rl.close();
  }
}

/**
 * Asks every question the flags did not answer, showing the default (taken on an empty
 * line); a bad answer is explained and asked again. Rejects with PromptAborted when the
 * input ends first.
 */
export async function askAnswers(
  dir: string,
  given: Partial<ProjectAnswers>,
  input: Readable,
  output: Writable,
): Promise<ProjectAnswers> {
  const queue = new LineQueue(input);
  const answers: Partial<ProjectAnswers> = {};
  try {
    for (const q of QUESTIONS) {
      const fromFlag = given[q.key];
      if (fromFlag !== undefined) {
        const problem = checkAnswer(q.key, fromFlag, answers);
        if (problem) throw new UsageError(`${q.flag} ${JSON.stringify(fromFlag)}: ${problem}`);
        answers[q.key] = fromFlag;
        continue;
      }
      const fallback = q.default(dir, answers);
      for (;;) {
        output.write(`? ${q.question} (${fallback}): `);
        const line = (await queue.next()).trim();
        const value = line === "" ? fallback : line;
        const problem = checkAnswer(q.key, value, answers);
        if (problem === null) {
          answers[q.key] = value;
          break;
        }
        output.write(`  ${JSON.stringify(value)} ${problem}\n`);
      }
    }
  } finally {
    queue.close();
  }
  return answers as ProjectAnswers;
}
