import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { ThawError } from '../../runtime/errors.ts'
import { ClientClock, type ClientPaceLimits, type ClientTooSlow } from './client-clock.ts'

/** Why an answer was not relayed whole: the client took it too slowly, or went away. */
export type AnswerCutCode = 'ANSWER_TIMEOUT' | 'CLIENT_CLOSED'

export type AnswerCut = ThawError & { readonly code: AnswerCutCode }

/**
 * An answer's body as the relay takes it: chunks pushed to a sink, with flow control. The worker
 * client makes one straight from undici's response (no stream in between: that was a good part of
 * the warm path's cost); answerFromReadable adapts any Readable (a custom handler's answer).
 */
export interface AnswerSource {
  /** Starts the flow, once: chunks to `sink.data` until `sink.end()`, or `sink.error()` once. */
  start(sink: AnswerSink): void
  /** Asks for no more chunks until resume() (a chunk already on its way may still come). */
  pause(): void
  resume(): void
  /**
   * Stops the answer (its exchange with the node is aborted if unfinished); nothing more reaches
   * the sink. Idempotent.
   */
  destroy(): void
}

export interface AnswerSink {
  data(chunk: Buffer): void
  end(): void
  error(err: Error): void
}

/** A Readable as an AnswerSource: its end, or its error, or a close before its end (an error). */
export function answerFromReadable(body: Readable): AnswerSource {
  let stopped = false
  return {
    start(sink) {
      body.on('data', (chunk: Buffer) => stopped || sink.data(chunk))
      body.once('end', () => stopped || sink.end())
      body.once('error', (err) => stopped || ((stopped = true), sink.error(err)))
      body.once('close', () => {
        if (!stopped && !body.readableEnded) {
          stopped = true
          sink.error(new Error('the answer stopped before its end'))
        }
      })
    },
    pause: () => void body.pause(),
    resume: () => void body.resume(),
    destroy() {
      stopped = true
      // A source destroyed here may still report it (undici's body: RequestAbortedError).
      body.on('error', () => {})
      body.destroy()
    },
  }
}

/** The whole answer (tests, small answers read by the host itself). */
export function readAnswer(source: AnswerSource): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    source.start({
      data: (chunk) => void chunks.push(chunk),
      end: () => resolve(Buffer.concat(chunks)),
      error: reject,
    })
  })
}

/**
 * Relays a function's answer body to the client under the same deadline as request bodies
 * (client-clock.ts; nginx's send_timeout, Kestrel's MinResponseDataRate): a client that takes
 * nothing of it for `timeoutMs`, or less than `minBytesPerSecond` on average once that has passed,
 * is reset (ANSWER_TIMEOUT) and the source destroyed, so a client that never reads cannot
 * keep a node slot, however large the answer. Only time the answer waits on the client counts
 * (`res` full until it drains, and the last bytes after the end); a node that is slow to produce
 * it is never the client's fault. Resolves once every byte is handed to the kernel; rejects with
 * the source's error (the node's side), ANSWER_TIMEOUT, or CLIENT_CLOSED. Nothing is held beyond
 * the response's own buffer: the source is paused with the client.
 */
export function relayAnswer(
  source: AnswerSource,
  res: ServerResponse,
  pace: ClientPaceLimits,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false
    const clock = new ClientClock(pace, (why) => {
      // A reset, not a FIN: a FIN would wait behind the unsent answer the client does not take,
      // keeping the connection and its buffers in the kernel; a reset drops both at once.
      res.socket?.resetAndDestroy()
      fail(cut('ANSWER_TIMEOUT', slowness(why)))
    })
    const onDrain = () => {
      clock.notWaiting()
      source.resume()
    }
    const onClose = () => {
      if (!res.writableFinished) fail(cut('CLIENT_CLOSED', 'the client closed the connection'))
    }
    const settle = (err?: Error) => {
      if (settled) return
      settled = true
      clock.stop()
      res.off('drain', onDrain).off('finish', onFinish).off('close', onClose)
      if (err) reject(err)
      else resolve()
    }
    const onFinish = () => settle()
    const fail = (err: Error) => {
      if (settled) return
      source.destroy()
      res.destroy()
      settle(err)
    }
    res.on('drain', onDrain).once('finish', onFinish).once('close', onClose)
    if (res.destroyed) return onClose()
    source.start({
      data(chunk) {
        if (settled) return
        const more = res.write(chunk, (err) => err || clock.progress(chunk.length))
        if (!more) {
          source.pause()
          clock.waiting()
        }
      },
      end() {
        if (settled) return
        clock.waiting() // until 'finish': the last bytes may still wait for the client
        res.end()
      },
      error: fail,
    })
  })
}

export function isAnswerCut(err: unknown): err is AnswerCut {
  const code = (err as { code?: unknown } | undefined)?.code
  return err instanceof ThawError && (code === 'ANSWER_TIMEOUT' || code === 'CLIENT_CLOSED')
}

function cut(code: AnswerCutCode, message: string): AnswerCut {
  return new ThawError(code, message, { fault: 'user' }) as AnswerCut
}

function slowness(why: ClientTooSlow): string {
  if (why.rule === 'silence') return `the client took nothing of the answer for ${why.timeoutMs} ms`
  const rate = `under ${why.minBytesPerSecond} bytes/s`
  return `the client took ${why.moved} bytes of the answer in ${why.waitedMs} ms, ${rate}`
}
