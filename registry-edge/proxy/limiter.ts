/** Runs at most `limit` tasks at once; the others wait in order. */
export class Limiter {
  readonly #limit: number
  readonly #waiting: (() => void)[] = []
  #running = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit)
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#running++
    try {
      return await task()
    } finally {
      // Hand the slot straight to the next task, or give it back.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running--
    }
  }
}
