import type { RpcInvocationResponse } from './core-types.ts'
import { functionHeaders, takesNativeRequest, toRpcHttpRequest } from './http-request.ts'
import { fromRpcHttpResponse, type HttpAnswer } from './http-response.ts'
import { lazyBody, type LazyBody } from './lazy-body.ts'
import { BodyTooLargeError, readBody } from './read-body.ts'
import { runInvocation } from './run-invocation.ts'
import type { Invocation, ServeContext } from './serve-context.ts'

/**
 * Buffered HTTP (the default): the request becomes RpcHttpData, the invocation runs, and the
 * HTTP output binding's value (`$return` for app.http) becomes the response. The body stays on
 * the connection until the function reads it (lazy-body.ts) when the library can take it so;
 * with an older library it is read whole first, as Azure's host sends it.
 */
export async function serveBuffered(ctx: ServeContext, inv: Invocation): Promise<void> {
  const declared = Number(inv.req.headers['content-length'])
  if (Number.isFinite(declared) && declared > ctx.bodyLimit)
    throw new BodyTooLargeError(ctx.bodyLimit)
  let lazy: LazyBody | undefined
  try {
    const body = takesNativeRequest(ctx.state.model)
      ? (lazy = lazyBody(inv.req, ctx.bodyLimit))
      : await readBody(inv.req, ctx.bodyLimit)
    const http = toRpcHttpRequest(inv.req, functionHeaders(inv.req), inv.params, body)
    const { response } = await runInvocation(ctx.state, ctx.log, {
      fn: inv.fn,
      invocationId: inv.invocationId,
      inputData: [{ name: inv.fn.trigger.name, data: { http } }],
      triggerMetadata: {},
      traceContext: inv.traceContext,
    })
    writeAnswer(inv, httpOutput(inv, response))
  } finally {
    lazy?.settle()
  }
}

/** The output binding of type http: `$return`, or a named one (app.generic with output.http). */
function httpOutput(inv: Invocation, response: RpcInvocationResponse): HttpAnswer {
  for (const [name, binding] of Object.entries(inv.fn.metadata.bindings)) {
    if (binding.direction !== 'out' || binding.type?.toLowerCase() !== 'http') continue
    if (name === '$return') return fromRpcHttpResponse(response.returnValue?.http)
    const out = response.outputData?.find((o) => o.name === name)
    return fromRpcHttpResponse(out?.data?.http)
  }
  return fromRpcHttpResponse(undefined)
}

function writeAnswer(inv: Invocation, answer: HttpAnswer): void {
  const headers: string[] = []
  for (const [k, v] of answer.headers) headers.push(k, v)
  if (!answer.headers.some(([k]) => k.toLowerCase() === 'content-length')) {
    headers.push('content-length', String(answer.body.length))
  }
  inv.res.writeHead(answer.status, headers)
  inv.res.end(inv.req.method === 'HEAD' ? undefined : answer.body)
}
