import type {
  FunctionInfo,
  InvokeResult,
  LogCategory,
  LogLevel,
} from '../../runtime/protocol/worker-messages.ts'
import type { DispatchInput, DispatchOutput } from '../worker/index.ts'

/**
 * What the runner reports while it works; `thaw start` prints them (log-format.ts), tests and
 * users may subscribe with the `logger` option. `generation` numbers the worker processes: each
 * reload starts a new one.
 */
export type RunnerEvent =
  | {
      type: 'log'
      generation: number
      level: LogLevel
      category: LogCategory
      message: string
      invocationId?: string
      functionName?: string
    }
  | { type: 'invocation-start'; generation: number; invocationId: string; functionName: string }
  | {
      type: 'invocation-end'
      generation: number
      invocationId: string
      functionName: string
      outcome: 'succeeded' | 'failed'
      durationMs: number
      error?: { message: string; stack?: string }
    }
  | { type: 'output'; generation: number; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'generation-ready'; generation: number; functions: FunctionInfo[]; reload: boolean }
  | { type: 'generation-failed'; generation: number; message: string; reload: boolean }
  | { type: 'generation-exited'; generation: number; code: number | null }
  | { type: 'reload'; reason: string }
  | { type: 'note'; level: 'information' | 'warning' | 'error'; message: string }

export type EventSink = (event: RunnerEvent) => void

/**
 * One running copy of the app: a worker process (Node.js apps) or a custom handler process.
 * Requests hold a reference (acquire) while they run; close() waits for them before stopping the
 * process, which is how a reload keeps requests in flight alive.
 */
export interface Generation {
  readonly id: number
  readonly kind: 'node' | 'custom-handler'
  readonly functions: readonly FunctionInfo[]
  /** Functions that could not be loaded (custom handlers: bad function.json), with why. */
  readonly problems: readonly { function: string; message: string }[]
  readonly streaming: boolean
  readonly model: { name: string; version: string } | null
  /** A release function, or undefined once the generation is closing or dead. */
  acquire(): (() => void) | undefined
  dispatch(input: DispatchInput): Promise<DispatchOutput>
  invoke(
    functionName: string,
    input: unknown,
    invocationId: string,
    signal?: AbortSignal,
  ): Promise<InvokeResult>
  /** Stops taking requests, waits for those in flight (at most graceMs), stops the process. Idempotent. */
  close(graceMs: number): Promise<void>
  /** Resolves when the process is gone, for whatever reason. */
  readonly exited: Promise<void>
}

/** Reference counting for acquire()/close(). */
export function createRefGate() {
  let refs = 0
  let closed = false
  let waiters: (() => void)[] = []
  return {
    get closed() {
      return closed
    },
    acquire(): (() => void) | undefined {
      if (closed) return undefined
      refs++
      let released = false
      return () => {
        if (released) return
        released = true
        if (--refs === 0) for (const w of waiters.splice(0)) w()
      }
    },
    /** Refuses new references and resolves when none is held, or at the deadline. */
    drain(graceMs: number): Promise<void> {
      closed = true
      if (refs === 0) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done)
          resolve()
        }, graceMs)
        const done = () => {
          clearTimeout(timer)
          resolve()
        }
        waiters.push(done)
      })
    },
  }
}

/** Splits a process's output into lines for `output` events. */
export function lineSink(emit: (line: string) => void): (chunk: Buffer) => void {
  let pending = ''
  return (chunk) => {
    const text = pending + chunk.toString()
    const lines = text.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) emit(line.replace(/\r$/, ''))
  }
}
