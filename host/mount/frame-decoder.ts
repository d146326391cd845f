import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { build } from 'esbuild'
import type { Codec, CodecName } from '../../runtime/format/codec/codec.ts'
import {
  FORMAT_ERROR_FAULT,
  FormatError,
  type FormatErrorCode,
} from '../../runtime/format/errors.ts'
import { decodeRun, type Frame } from '../../runtime/format/frame.ts'

/** The thread's entry under tsx: used only when the sources cannot be bundled. */
const TSX_ENTRY = new URL('./frame-decoder-worker.mjs', import.meta.url)

/** Runs decoding to at least this many bytes go to a thread; smaller ones cost less inline than
 * a message round trip (~0.1 ms, about what zstd takes for 256 KiB here). */
export const OFF_THREAD_BYTES = 256 * 1024

/** One run of consecutive frames of a blob: `bytes` start at the first frame's `coff`. */
export interface DecodeJob {
  id: number
  codec: CodecName
  frames: Frame[]
  bytes: ArrayBuffer
}

export type DecodeReply =
  | { id: number; ok: true; buffers: ArrayBuffer[] }
  | { id: number; ok: false; code?: string; message: string }

export interface FrameDecoder {
  /** Verifies every frame's digest, then decodes it (FormatError FRAME_* on wrong bytes). */
  decode(codec: Codec, frames: readonly Frame[], bytes: Uint8Array): Promise<Buffer[]>
  /** Runs decoded on a thread, and on the calling thread (small, or no thread ready); threads
   * that died (each replaced while fewer than 3 died before they were ready). */
  readonly stats: { threaded: number; inline: number; died: number }
  /** True once a thread is ready; false if none could start (or closed first). With `lazy`,
   * settles only after the first run of `offThreadBytes` or more started the threads. */
  readonly ready: Promise<boolean>
  /** Terminates the threads; later runs decode inline. Idempotent. */
  close(): Promise<void>
}

interface Thread {
  worker: Worker
  ready: boolean
  pending: Map<number, { resolve: (b: Buffer[]) => void; reject: (e: Error) => void }>
}

/** A thread that died or went away: the run is decoded inline instead. */
class ThreadGone extends Error {}

/**
 * Verifies and decodes fetched frames off the thread that serves FUSE (the "decompresses
 * off the FUSE path when large"): a 27 MB prefetch bundle is ~0.2 s of sha256 + zstd, during
 * which no lookup or read of the starting process would be answered. Threads start at creation
 * (from the bundled sources, ~0.1-0.2 s) and, until one is ready, runs decode inline, so a cold
 * start never waits for a thread. A thread that dies is replaced; its runs decode inline.
 */
export function createFrameDecoder(
  options: {
    threads?: number
    /** The thread's entry module (tests start one that misbehaves). */
    workerEntry?: URL
    /** Runs decoding to fewer bytes are decoded inline (default OFF_THREAD_BYTES). */
    offThreadBytes?: number
    /** Start the threads on the first run of `offThreadBytes` or more, not at creation: for a
     * one-shot `thaw mount`, whose reads may all come from the cache (default false). */
    lazy?: boolean
    /** Told when a thread dies (its runs are decoded inline, and it is replaced). */
    warn?: (message: string) => void
  } = {},
): FrameDecoder {
  const count = options.threads ?? Math.min(4, Math.max(1, availableParallelism() - 1))
  let onReady: (ready: boolean) => void = () => {}
  const ready = new Promise<boolean>((resolve) => (onReady = resolve))
  const threads: Thread[] = []
  const warn = options.warn ?? (() => {})
  const offThreadBytes = options.offThreadBytes ?? OFF_THREAD_BYTES
  const stats = { threaded: 0, inline: 0, died: 0 }
  let nextId = 0
  let closed = false
  // Threads that died before they were ready (a broken install): after a few, decode inline.
  let stillborn = 0

  let entry: URL | undefined
  const spawn = (): Thread => {
    const thread: Thread = { worker: new Worker(entry!), ready: false, pending: new Map() }
    const gone = (why: string) => {
      const i = threads.indexOf(thread)
      if (i < 0) return
      threads.splice(i, 1)
      if (closed) return
      stats.died++
      if (!thread.ready) stillborn++
      const replaced = stillborn < 3
      warn(
        `${why}; its ${thread.pending.size} run(s) are decoded inline` +
          (replaced ? ', and a new thread starts' : '; no new thread starts (3 died unready)'),
      )
      for (const p of thread.pending.values()) p.reject(new ThreadGone(why))
      thread.pending.clear()
      if (replaced) threads.push(spawn())
      if (threads.length === 0) onReady(false)
    }
    thread.worker.on('message', (reply: DecodeReply | { ready: true }) => {
      if ('ready' in reply) {
        thread.ready = true
        return onReady(true)
      }
      const p = thread.pending.get(reply.id)
      thread.pending.delete(reply.id)
      if (!p) return
      if (reply.ok) p.resolve(reply.buffers.map((b) => Buffer.from(b)))
      else p.reject(errorOf(reply))
    })
    thread.worker.once('error', (err) => gone(`decoder thread failed: ${err.message}`))
    thread.worker.once('exit', (code) => gone(`decoder thread exited with ${code}`))
    thread.worker.unref()
    return thread
  }
  const start = (url: URL) => {
    entry = url
    if (closed) return
    for (let i = 0; i < count; i++) threads.push(spawn())
  }
  let started = false
  const startOnce = () => {
    if (started) return
    started = true
    if (options.workerEntry) return start(options.workerEntry)
    void bundledEntry().then(start, (err: Error) => {
      warn(`decoder thread sources not bundled (${err.message}); starting them under tsx`)
      start(TSX_ENTRY)
    })
  }
  if (!options.lazy) startOnce()

  const inline = (codec: Codec, frames: readonly Frame[], bytes: Uint8Array): Buffer[] => {
    stats.inline++
    return decodeRun(codec, frames, bytes)
  }

  const onThread = (thread: Thread, codec: Codec, frames: readonly Frame[], bytes: Uint8Array) =>
    new Promise<Buffer[]>((resolve, reject) => {
      const id = nextId++
      // A copy the thread owns: `bytes` may be a view into a larger buffer (a bundle chunk).
      const own = new Uint8Array(bytes).buffer
      thread.pending.set(id, { resolve, reject })
      const job: DecodeJob = { id, codec: codec.name, frames: [...frames], bytes: own }
      thread.worker.postMessage(job, [own])
    })

  return {
    stats,
    ready,
    async decode(codec, frames, bytes) {
      const size = frames.reduce((n, f) => n + f.ulen, 0)
      if (!closed && size >= offThreadBytes) startOnce()
      const live = threads.filter((t) => t.ready)
      if (closed || size < offThreadBytes || live.length === 0) return inline(codec, frames, bytes)
      const thread = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a))
      try {
        const out = await onThread(thread, codec, frames, bytes)
        stats.threaded++
        return out
      } catch (err) {
        if (err instanceof ThreadGone) return inline(codec, frames, bytes)
        throw err
      }
    },
    async close() {
      if (closed) return
      closed = true
      onReady(false)
      const all = threads.splice(0)
      for (const t of all) for (const p of t.pending.values()) p.reject(new ThreadGone('closed'))
      await Promise.all(all.map((t) => t.worker.terminate()))
    },
  }
}

/**
 * The thread's sources (frame-decoder-worker.ts and the runtime/format modules it imports) as one
 * plain-JS module, so that a thread starts without tsx: 0.05-0.08 s of CPU instead of 0.3-0.4 s
 * (tsx starts a loader and esbuild in each thread), which a cold start right after `thaw mount`
 * or `thaw host` would otherwise pay. Bundling takes ~50 ms in esbuild's own process. zstd.ts
 * resolves zstd-napi from `import.meta.url`, which in a `data:` module would be the data URL:
 * it is defined as zstd.ts's own URL (the only user of import.meta in those sources).
 */
async function bundledEntry(): Promise<URL> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL('./frame-decoder-worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    define: {
      'import.meta.url': JSON.stringify(
        new URL('../../runtime/format/codec/zstd.ts', import.meta.url).href,
      ),
    },
  })
  return new URL(`data:text/javascript,${encodeURIComponent(out.outputFiles[0]!.text)}`)
}

/** The thread's error with its stable code: FrameLoader refetches elsewhere on FRAME_* codes. */
function errorOf(reply: { code?: string; message: string }): Error {
  if (reply.code !== undefined && reply.code in FORMAT_ERROR_FAULT)
    return new FormatError(reply.code as FormatErrorCode, reply.message)
  return new ThreadGone(reply.message)
}
