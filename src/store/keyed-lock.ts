/**
 * Runs async sections one at a time per key, in call order (a per-key mutex), for the
 * read-modify-write steps of the repositories. Holds an entry only while a key has a section
 * running or waiting, so its size is bounded by the work in flight. In-process only: the
 * repositories assume a single writer process.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(section, section);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once every section started before this call has settled. */
  async settled(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  /** Keys with a section running or waiting (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
