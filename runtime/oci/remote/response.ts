import type { Readable } from 'node:stream'
import { OciError } from '../errors.ts'

/** A response as the transport hands it out: status, headers by lowercase name, and the body. */
export interface RegistryResponse {
  readonly status: number
  /** Where the final response came from, after redirects. */
  readonly url: URL
  /** A header's value; repeated headers joined with ", ". */
  header(name: string): string | undefined
  readonly body: Readable
}

/** Reads a whole body, refusing (and dropping the connection) beyond `maxBytes`. */
export async function readBody(
  res: RegistryResponse,
  maxBytes: number,
  what: string,
): Promise<Buffer> {
  const declared = Number(res.header('content-length'))
  if (Number.isFinite(declared) && declared > maxBytes) {
    destroyBody(res)
    throw new OciError(
      'SIZE_INVALID',
      `${what} is ${declared} bytes, more than the ${maxBytes} allowed`,
    )
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) {
      destroyBody(res)
      throw new OciError('SIZE_INVALID', `${what} is more than the ${maxBytes} bytes allowed`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

/**
 * Drops a body without reading it (its connection closes). undici reports the abort as an
 * 'error' on the body, which nobody else is listening for at this point: swallow it.
 */
export function destroyBody(res: RegistryResponse): void {
  res.body.on('error', () => undefined)
  res.body.destroy()
}

/** Reads and forgets a body so its connection can be reused. */
export async function discardBody(res: RegistryResponse): Promise<void> {
  try {
    for await (const _ of res.body) {
      // drain
    }
  } catch {
    // the body failed: nothing to reuse, nothing to report
  }
}
