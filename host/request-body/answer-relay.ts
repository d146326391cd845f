import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { ThawError } from '../../runtime/errors.ts'
import { ClientClock, type ClientPaceLimits, type ClientTooSlow } from './client-clock.ts'

/** Why an answer was not relayed whole: the client took it too slowly, or went away. */
export type AnswerCutCode = 'ANSWER_TIMEOUT' | 'CLIENT_CLOSED'

export type AnswerCut = ThawError & { readonly code: AnswerCutCode }

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
  source: Readable,
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
    const onData = (chunk: Buffer) => {
      const more = res.write(chunk, (err) => err || clock.progress(chunk.length))
      if (!more) {
        source.pause()
        clock.waiting()
      }
    }
    const onDrain = () => {
      clock.notWaiting()
      source.resume()
    }
    const onEnd = () => {
      clock.waiting() // until 'finish': the last bytes may still wait for the client
      res.end()
    }
    const onClose = () => {
      if (!res.writableFinished) fail(cut('CLIENT_CLOSED', 'the client closed the connection'))
    }
    const onSourceError = (err: Error) => fail(err)
    const onSourceClose = () => {
      if (!source.readableEnded) fail(new Error('the answer stopped before its end'))
    }
    const settle = (err?: Error) => {
      if (settled) return
      settled = true
      clock.stop()
      source.off('data', onData).off('end', onEnd)
      source.off('error', onSourceError).off('close', onSourceClose)
      // A source destroyed here may still report it (undici's body: RequestAbortedError).
      source.on('error', () => {})
      res.off('drain', onDrain).off('finish', onFinish).off('close', onClose)
      if (err) reject(err)
      else resolve()
    }
    const onFinish = () => settle()
    const fail = (err: Error) => {
      source.destroy()
      res.destroy()
      settle(err)
    }
    source.on('data', onData).once('end', onEnd)
    source.once('error', onSourceError).once('close', onSourceClose)
    res.on('drain', onDrain).once('finish', onFinish).once('close', onClose)
    if (res.destroyed) onClose()
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
