export type Lane = 'normal' | 'priority'

/**
 * Runs at most `limit` tasks at once; the others wait in order, those in the priority lane
 * before any in the normal lane.
 */
export class Limiter {
  readonly #limit: number
  readonly #waiting: Record<Lane, (() => void)[]> = { priority: [], normal: [] }
  #running = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Tasks waiting for a slot, in one lane or in both. */
  waiting(lane?: Lane): number {
    const { priority, normal } = this.#waiting
    return lane ? this.#waiting[lane].length : priority.length + normal.length
  }

  async run<T>(task: () => Promise<T>, lane: Lane = 'normal'): Promise<T> {
    if (this.#running >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting[lane].push(resolve))
    } else this.#running++
    try {
      return await task()
    } finally {
      // Hand the slot straight to the next task, or give it back.
      const next = this.#waiting.priority.shift() ?? this.#waiting.normal.shift()
      if (next) next()
      else this.#running--
    }
  }
}
