import type { IncomingMessage, ServerResponse } from 'node:http'
import { isThawError, ThawError } from '../../runtime/errors.ts'
import type { RequestBodyLimits } from './body-limits.ts'

/** The two ways a body is refused: too long (413) or too slow (408). The client is at fault. */
export type BodyRefusalCode = 'BODY_TOO_LARGE' | 'BODY_TIMEOUT'

export type BodyRefusal = ThawError & { readonly code: BodyRefusalCode }

const STATUS: Record<BodyRefusalCode, number> = { BODY_TOO_LARGE: 413, BODY_TIMEOUT: 408 }

function refusal(code: BodyRefusalCode, message: string): BodyRefusal {
  return new ThawError(code, message, { fault: 'user' }) as BodyRefusal
}

export function bodyTooLarge(limits: RequestBodyLimits): BodyRefusal {
  return refusal('BODY_TOO_LARGE', `the request body is larger than ${limits.maxBytes} bytes`)
}

export function bodyTimedOut(why: string): BodyRefusal {
  return refusal('BODY_TIMEOUT', `the request body came too slowly: ${why}`)
}

export function isBodyRefusal(err: unknown): err is BodyRefusal {
  return isThawError(err, 'BODY_TOO_LARGE') || isThawError(err, 'BODY_TIMEOUT')
}

/**
 * BODY_TOO_LARGE when the declared Content-Length is over the limit: checked before a node is
 * acquired, so such a request never starts or touches one. A chunked body is counted as it comes
 * (meterBody).
 */
export function checkDeclaredLength(
  req: IncomingMessage,
  limits: RequestBodyLimits,
): BodyRefusal | undefined {
  const declared = Number(req.headers['content-length'])
  return Number.isFinite(declared) && declared > limits.maxBytes ? bodyTooLarge(limits) : undefined
}

/**
 * The body may come: answers `Expect: 100-continue` (RFC 9110 §10.1.1) once the checks that need
 * no body have passed, so a client that asked first never sends a body that would be refused.
 * Only for servers that listen to 'checkContinue' (node:http otherwise answers 100 itself).
 */
export function acceptBody(req: IncomingMessage, res: ServerResponse): void {
  if (/^100-continue$/i.test(String(req.headers.expect ?? '')) && !res.headersSent) {
    res.writeContinue()
  }
}

/**
 * Answers a refused body: 413 or 408 (RFC 9110 §15.5.9 and §15.5.14), then closes the connection,
 * since the rest of the body is left unread. If the answer had already started, all that is left
 * is to close the connection, which cuts the upload. Returns the status for the request log (499
 * when the connection was closed).
 *
 * The close lingers (RFC 9112 §9.6): a connection closed while the client is still sending is
 * reset, and the reset can discard the answer before the client reads it. So the rest of the body
 * is read and dropped for at most LINGER_MS or LINGER_BYTES, then the connection is closed; a body
 * that ends within them leaves the connection open for the next request.
 */
export function refuseBody(res: ServerResponse, err: BodyRefusal): number {
  if (res.headersSent) {
    res.destroy()
    res.req.socket?.destroy()
    return 499
  }
  const status = STATUS[err.code]
  const text = Buffer.from(`${err.message}\n`)
  const unread = !res.req.complete
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': text.length,
    // With `Connection: close` Node closes the socket as soon as the answer is written.
    ...(unread ? {} : { connection: 'close' }),
  })
  res.end(text)
  if (unread) lingerThenClose(res.req)
  return status
}

const LINGER_MS = 2000
const LINGER_BYTES = 8 * 1024 * 1024

function lingerThenClose(req: IncomingMessage): void {
  const socket = req.socket
  let dropped = 0
  const close = () => {
    clearTimeout(timer)
    socket.destroy()
  }
  const timer = setTimeout(close, LINGER_MS).unref()
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length
    if (dropped > LINGER_BYTES) close()
  })
  req.once('end', () => clearTimeout(timer)) // all read: the connection may serve the next request
  req.once('error', close)
  req.resume()
}
