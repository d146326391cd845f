/**
 * Runs tasks one at a time per key (tasks on different keys run concurrently). Used so two
 * requests on the same upload session cannot interleave their writes.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>()

  /** Whether a task on `key` is running or waiting. */
  isBusy(key: string): boolean {
    return this.#tails.has(key)
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    const current = previous.catch(() => {}).then(task)
    const tail = current.catch(() => {})
    this.#tails.set(key, tail)
    try {
      return await current
    } finally {
      // Forget the key once nothing is queued behind this task.
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
