import { request, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { finished } from 'node:stream/promises'
import { functionHeaders, requestUrl } from './http-request.ts'
import { BodyTooLargeError } from './read-body.ts'
import { runInvocation } from './run-invocation.ts'
import type { Invocation, ServeContext } from './serve-context.ts'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer'])

/**
 * HTTP streaming mode (`app.setup({ enableHttpStream: true })`, LIB src/http/httpProxy.ts): the
 * raw request is forwarded, body streaming, to the library's own server with `x-ms-invocation-id`
 * and `x-forwarded-host/-proto` (the library throws without them), while the invocation runs
 * concurrently: getArguments() waits for that request to arrive. The trigger's RpcHttpData is
 * empty; headers travel in triggerMetadata.Headers (azure-functions-host#9840) and route params
 * as the other string keys. The library writes the response on the forwarded connection, and it
 * is streamed back as it comes.
 */
export async function serveStreamed(ctx: ServeContext, inv: Invocation): Promise<void> {
  const { req, res } = inv
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > ctx.bodyLimit)
    throw new BodyTooLargeError(ctx.bodyLimit)

  const headers = functionHeaders(req)
  const url = new URL(requestUrl(req))
  const upstream = forward(ctx, inv, headers, url)
  let tooLarge = false
  let size = 0
  req.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size > ctx.bodyLimit && !tooLarge) {
      tooLarge = true
      upstream.abort()
    }
  })
  req.pipe(upstream.request)

  const triggerMetadata: Record<string, { string?: string; json?: string }> = {
    Headers: { json: JSON.stringify(headers) },
  }
  for (const [k, v] of Object.entries(inv.params))
    if (v !== null) triggerMetadata[k] = { string: v }
  const invocation = runInvocation(ctx.state, ctx.log, {
    fn: inv.fn,
    invocationId: inv.invocationId,
    inputData: [{ name: inv.fn.trigger.name, data: { http: {} } }],
    triggerMetadata,
    traceContext: inv.traceContext,
  })
  type First = { kind: 'response'; res: IncomingMessage } | { kind: 'done'; empty: boolean }
  const settled = invocation.then((o) => ({ kind: 'done', empty: o.result == null }) as const)
  try {
    const first: First = await Promise.race([
      upstream.response.then((r) => ({ kind: 'response', res: r }) as const),
      settled,
    ])
    if (first.kind === 'done' && first.empty) {
      // The library sends nothing for an empty result; answer as buffered mode does: 200, no body.
      upstream.abort()
      res.writeHead(200, { 'content-length': '0' })
      res.end()
      return
    }
    const upRes = first.kind === 'response' ? first.res : await upstream.response
    const piped = pipeBack(upRes, res)
    await invocation
    await piped
  } catch (err) {
    upstream.abort()
    throw tooLarge ? new BodyTooLargeError(ctx.bodyLimit) : err
  }
}

function forward(ctx: ServeContext, inv: Invocation, headers: Record<string, string>, url: URL) {
  const target = ctx.streamUri!
  const out: OutgoingHttpHeaders = { ...headers }
  out['x-ms-invocation-id'] = inv.invocationId
  out['x-forwarded-host'] = url.host
  out['x-forwarded-proto'] = url.protocol.slice(0, -1)
  const req = request({
    // The library listens on all interfaces and says "localhost": skip the name lookup.
    host: target.hostname === 'localhost' ? '127.0.0.1' : target.hostname,
    port: target.port,
    method: inv.req.method,
    path: inv.req.url,
    headers: out,
    agent: ctx.streamAgent,
  })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
    req.once('close', () => reject(new Error('the streaming proxy closed before it answered')))
  })
  response.catch(() => {})
  return { request: req, response, abort: () => req.destroy() }
}

async function pipeBack(upRes: IncomingMessage, res: Invocation['res']): Promise<void> {
  const headers: string[] = []
  const raw = upRes.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!)
  }
  res.writeHead(upRes.statusCode ?? 200, headers)
  upRes.pipe(res)
  await finished(res)
}
