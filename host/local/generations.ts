import type { EventSink, Generation } from './generation.ts'

/**
 * The current generation and how it is replaced. A reload starts a new generation next to the
 * current one, switches only once the new one is ready, then closes the old one, which finishes
 * the requests it holds. A failed reload keeps the old generation serving. Reload requests that
 * arrive while one is starting are folded into one more reload after it.
 */
export interface Generations {
  current(): Generation | undefined
  /** The first start; throws what the start threw. */
  start(): Promise<Generation>
  /** Resolves when the reload finished (switched or failed). */
  reload(reason: string): Promise<void>
  /** Calls back with the generation that just became current. */
  onSwitch(listener: (next: Generation, previous: Generation | undefined) => void): void
  /** Closes every generation. Idempotent. */
  close(): Promise<void>
}

export function createGenerations(options: {
  launch: (id: number, reload: boolean) => Promise<Generation>
  graceMs: number
  emit: EventSink
}): Generations {
  let current: Generation | undefined
  let nextId = 1
  let running: Promise<void> | undefined
  let pending: string | undefined
  let closed = false
  const listeners: ((next: Generation, previous: Generation | undefined) => void)[] = []
  const retiring = new Set<Promise<void>>()

  const switchTo = (next: Generation) => {
    const previous = current
    current = next
    for (const l of listeners) l(next, previous)
    if (previous) {
      const p = previous.close(options.graceMs).finally(() => retiring.delete(p))
      retiring.add(p)
    }
  }

  const reloadOnce = async (reason: string) => {
    options.emit({ type: 'reload', reason })
    const id = nextId++
    try {
      const next = await options.launch(id, true)
      if (closed) return void (await next.close(0))
      switchTo(next)
      options.emit({
        type: 'generation-ready',
        generation: id,
        functions: [...next.functions],
        reload: true,
      })
    } catch (err) {
      options.emit({
        type: 'generation-failed',
        generation: id,
        message: (err as Error).message,
        reload: true,
      })
    }
  }

  const reload = (reason: string): Promise<void> => {
    if (closed) return Promise.resolve()
    if (running) {
      pending = reason
      return running
    }
    running = (async () => {
      let next: string | undefined = reason
      while (next !== undefined && !closed) {
        pending = undefined
        await reloadOnce(next)
        next = pending
      }
    })().finally(() => (running = undefined))
    return running
  }

  return {
    current: () => current,
    async start() {
      const id = nextId++
      const first = await options.launch(id, false)
      switchTo(first)
      options.emit({
        type: 'generation-ready',
        generation: id,
        functions: [...first.functions],
        reload: false,
      })
      return first
    },
    reload,
    onSwitch: (l) => void listeners.push(l),
    async close() {
      closed = true
      await running?.catch(() => {})
      const last = current
      current = undefined
      await Promise.all([last?.close(options.graceMs), ...retiring])
    },
  }
}
