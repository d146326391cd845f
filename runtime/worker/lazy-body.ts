import type { IncomingMessage } from 'node:http'
import { BodyTooLargeError } from './read-body.ts'

/** A request body that is read from the connection only when the function reads it. */
export interface LazyBody {
  /** The body for a web `Request` (null when the request has none). */
  readonly stream: ReadableStream<Uint8Array> | null
  /**
   * After the answer: what the function left unread is discarded (the connection stays usable,
   * nothing is held). Idempotent.
   */
  settle(): void
}

/**
 * The request body as a pull stream with a high-water mark of 0: nothing is read until the
 * function asks (`request.text()`, `request.body`), then one chunk per pull, so a function that
 * never reads its body never holds it, and one that streams it holds a chunk at a time. More than
 * `limit` bytes errors the stream with BodyTooLargeError (answered 413); a connection that ends
 * before the body does errors it too, so a reader never waits forever.
 */
export function lazyBody(req: IncomingMessage, limit: number): LazyBody {
  const declared = Number(req.headers['content-length'])
  // No Content-Length and no Transfer-Encoding means no body (RFC 9112 §6.3).
  if (req.headers['transfer-encoding'] === undefined && !(declared > 0)) {
    return { stream: null, settle: () => {} }
  }
  let received = 0
  let touched = false
  let detach = () => {}
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        touched = true
        return new Promise<void>((resolve) => {
          const finish = (step: () => void) => {
            detach()
            step()
            resolve()
          }
          const onReadable = () => {
            const chunk = req.read() as Buffer | null
            if (chunk === null) return
            received += chunk.length
            if (received > limit) finish(() => controller.error(new BodyTooLargeError(limit)))
            else finish(() => controller.enqueue(chunk))
          }
          const onEnd = () => finish(() => controller.close())
          const onClose = () => {
            if (!req.complete) finish(() => controller.error(new Error('the request was aborted')))
          }
          const onError = (err: Error) => finish(() => controller.error(err))
          detach = () => {
            req.off('readable', onReadable)
            req.off('end', onEnd)
            req.off('close', onClose)
            req.off('error', onError)
          }
          req.on('readable', onReadable)
          req.once('end', onEnd)
          req.once('close', onClose)
          req.once('error', onError)
          onReadable()
        })
      },
      cancel() {
        detach()
        req.resume()
      },
    },
    { highWaterMark: 0 },
  )
  return {
    stream,
    settle() {
      // Untouched, node:http discards the rest itself once the answer is written.
      if (!touched || req.complete) return
      detach()
      req.resume()
    },
  }
}
