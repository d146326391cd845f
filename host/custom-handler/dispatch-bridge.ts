import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { answerFromReadable } from '../request-body/answer-relay.ts'
import type { DispatchInput, DispatchOutput } from '../worker/worker-client.ts'
import type { HandlerHttpAnswer, HandlerHttpRequest } from './payload.ts'

/**
 * The front door's dispatch input as a handler request, the URL rebuilt from the path and Host.
 * The body is read whole (at most `bodyLimit` bytes, else RangeError) for the payload protocol,
 * which carries it inside JSON; a forwarded request (`stream`) keeps it a stream, so the host
 * holds none of it and the handler reads it at its own pace.
 */
export async function toHandlerRequest(
  input: DispatchInput,
  bodyLimit: number,
  o: { stream?: boolean } = {},
): Promise<HandlerHttpRequest> {
  const body = !input.body
    ? Buffer.alloc(0)
    : o.stream
      ? input.body
      : await readAll(input.body, bodyLimit)
  const host = String(input.headers.host ?? 'localhost')
  return {
    method: input.method,
    url: new URL(input.path, `http://${host}`),
    headers: toHeaders(input.headers),
    body,
    params: input.params,
  }
}

/** A handler's answer as the front door's dispatch output (repeated headers kept as lists). */
export function toDispatchOutput(answer: HandlerHttpAnswer): DispatchOutput {
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of answer.headers) {
    const key = k.toLowerCase()
    const prev = headers[key]
    headers[key] = prev === undefined ? v : ([] as string[]).concat(prev, v)
  }
  headers['content-length'] = String(answer.body.length)
  return { status: answer.status, headers, body: answerFromReadable(Readable.from([answer.body])) }
}

function toHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers()
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    for (const one of Array.isArray(v) ? v : [v]) out.append(k, one)
  }
  return out
}

async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > limit) throw new RangeError(`request body larger than ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
