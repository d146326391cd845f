import { Worker } from 'node:worker_threads'
import { ThawError } from '../../runtime/errors.ts'
import type { ConvertJob, ConvertReply, ConvertResult } from './convert-job.ts'

const WORKER_ENTRY = new URL('./convert-worker.mjs', import.meta.url)

/**
 * Runs conversion jobs on worker threads, at most `concurrency` at a time (the rest wait in FIFO
 * order). Threads are started on demand and kept for the next job: starting one costs about 2 s
 * here (tsx compiles the format sources in each new thread). A thread whose job is aborted or
 * that dies is terminated and replaced by a fresh one on the next job.
 */
export class WorkerPool {
  readonly #concurrency: number
  readonly #waiting: (() => void)[] = []
  readonly #idle: Worker[] = []
  readonly #all = new Set<Worker>()
  #active = 0
  #closed = false

  constructor(concurrency: number) {
    this.#concurrency = Math.max(1, concurrency)
  }

  async run(job: ConvertJob, signal?: AbortSignal): Promise<ConvertResult> {
    await this.#acquire(signal)
    try {
      return await this.#runOn(this.#idle.pop() ?? this.#spawn(), job, signal)
    } finally {
      this.#active--
      this.#waiting.shift()?.()
    }
  }

  /** Terminates every thread (running jobs reject) and refuses new jobs. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    for (const wake of this.#waiting.splice(0)) wake()
    await Promise.all([...this.#all].map((w) => w.terminate()))
  }

  async #acquire(signal?: AbortSignal): Promise<void> {
    while (this.#active >= this.#concurrency && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
      signal?.throwIfAborted()
    }
    if (this.#closed) throw closedError()
    this.#active++
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_ENTRY)
    this.#all.add(worker)
    worker.once('exit', () => this.#all.delete(worker))
    return worker
  }

  #runOn(worker: Worker, job: ConvertJob, signal?: AbortSignal): Promise<ConvertResult> {
    return new Promise<ConvertResult>((resolve, reject) => {
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort)
        worker.off('message', onMessage)
        worker.off('error', onError)
        worker.off('exit', onExit)
      }
      const fail = (err: unknown) => {
        cleanup()
        void worker.terminate()
        reject(err)
      }
      const onMessage = (reply: ConvertReply) => {
        cleanup()
        if (!this.#closed) this.#idle.push(worker)
        if (reply.ok) resolve(reply.result)
        else reject(errorOf(reply))
      }
      const onError = (err: Error) => fail(err)
      const onExit = (code: number) => fail(this.#closed ? closedError() : exitError(code))
      const onAbort = () => fail(signal!.reason)
      if (signal?.aborted) return fail(signal.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      worker.on('message', onMessage)
      worker.once('error', onError)
      worker.once('exit', onExit)
      worker.postMessage(job)
    })
  }
}

/** A worker's error as a ThawError with the same code and fault (the `entry` is in the message). */
function errorOf(reply: Extract<ConvertReply, { ok: false }>): ThawError {
  return new ThawError(reply.code, reply.message, { fault: reply.fault })
}

function exitError(code: number): ThawError {
  return new ThawError('CONVERSION_FAILED', `conversion worker exited with code ${code}`)
}

function closedError(): ThawError {
  return new ThawError('CONVERTER_CLOSED', 'the converter is closed')
}
