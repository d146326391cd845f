import type { Context } from 'hono'
import type { EdgeEnv } from '../edge-env.ts'

/**
 * The request body as chunks. Under @hono/node-server the Node request stream is read directly
 * (the web stream hono would build around it adds a copy per chunk on the upload path).
 */
export function requestBody(c: Context<EdgeEnv>): AsyncIterable<Uint8Array> {
  const incoming = c.env?.incoming
  if (incoming && !incoming.readableEnded) return incoming
  return c.req.raw.body ?? emptyBody()
}

/** Whether the request declares a body (Content-Length > 0, or chunked transfer coding). */
export function hasBody(c: Context<EdgeEnv>): boolean {
  const length = c.req.header('content-length')
  if (length !== undefined) return length.trim() !== '0'
  return c.req.header('transfer-encoding') !== undefined
}

/** The declared Content-Length, or undefined when absent or not a plain integer. */
export function contentLength(c: Context<EdgeEnv>): number | undefined {
  const value = c.req.header('content-length')?.trim()
  return value && /^\d{1,15}$/.test(value) ? Number(value) : undefined
}

/**
 * Reads a whole body that must stay small (a manifest). Fails with `tooLarge()` as soon as the
 * declared or received size exceeds `limit`, without reading further.
 */
export async function readLimitedBody(
  c: Context<EdgeEnv>,
  limit: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const declared = contentLength(c)
  if (declared !== undefined && declared > limit) throw tooLarge()
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of requestBody(c)) {
    size += chunk.byteLength
    if (size > limit) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}
