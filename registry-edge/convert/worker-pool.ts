import { Worker } from 'node:worker_threads'
import { ThawError } from '../../runtime/errors.ts'
import type { ConvertJob, ConvertReply, ConvertResult } from './convert-job.ts'

const WORKER_ENTRY = new URL('./convert-worker.mjs', import.meta.url)

/**
 * Runs conversion jobs on worker threads, at most `concurrency` at a time (the rest wait in FIFO
 * order). One thread per job: a thread costs ~100 ms to start next to a conversion of seconds, and
 * a fresh one per job means a crashed or aborted job leaves nothing behind (terminate() frees it).
 */
export class WorkerPool {
  readonly #concurrency: number
  readonly #waiting: (() => void)[] = []
  readonly #running = new Set<Worker>()
  #active = 0
  #closed = false

  constructor(concurrency: number) {
    this.#concurrency = Math.max(1, concurrency)
  }

  get active(): number {
    return this.#active
  }

  async run(job: ConvertJob, signal?: AbortSignal): Promise<ConvertResult> {
    await this.#acquire(signal)
    try {
      return await this.#runOne(job, signal)
    } finally {
      this.#active--
      this.#waiting.shift()?.()
    }
  }

  /** Terminates running workers (their jobs reject) and refuses new jobs. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#running].map((w) => w.terminate()))
  }

  async #acquire(signal?: AbortSignal): Promise<void> {
    while (this.#active >= this.#concurrency) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
      signal?.throwIfAborted()
    }
    if (this.#closed) throw closedError()
    this.#active++
  }

  #runOne(job: ConvertJob, signal?: AbortSignal): Promise<ConvertResult> {
    signal?.throwIfAborted()
    const worker = new Worker(WORKER_ENTRY)
    this.#running.add(worker)
    return new Promise<ConvertResult>((resolve, reject) => {
      const abort = () => void worker.terminate()
      signal?.addEventListener('abort', abort, { once: true })
      const settle = (fn: () => void) => {
        signal?.removeEventListener('abort', abort)
        this.#running.delete(worker)
        void worker.terminate()
        fn()
      }
      worker.once('message', (reply: ConvertReply) =>
        settle(() => (reply.ok ? resolve(reply.result) : reject(errorOf(reply)))),
      )
      worker.once('error', (err) => settle(() => reject(err)))
      worker.once('exit', (code) =>
        settle(() => reject(signal?.aborted ? signal.reason : workerExit(code, this.#closed))),
      )
      worker.postMessage(job)
    })
  }
}

/** A worker's error as a ThawError with the same code and fault (the `entry` stays in the message). */
function errorOf(reply: Extract<ConvertReply, { ok: false }>): ThawError {
  return new ThawError(reply.code, reply.message, { fault: reply.fault })
}

function workerExit(code: number, closed: boolean): ThawError {
  return closed
    ? closedError()
    : new ThawError('CONVERSION_FAILED', `conversion worker exited with code ${code}`)
}

function closedError(): ThawError {
  return new ThawError('CONVERTER_CLOSED', 'the converter is closed')
}
