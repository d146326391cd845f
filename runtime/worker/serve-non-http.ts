import type { InvokeResult } from '../protocol/worker-messages.ts'
import type { RpcTypedData } from './core-types.ts'
import { readBody } from './read-body.ts'
import { runInvocation } from './run-invocation.ts'
import type { Invocation, ServeContext } from './serve-context.ts'
import { fromTypedData, toTypedData } from './typed-data.ts'

export class BadInvokeBodyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BadInvokeBodyError'
  }
}

/**
 * A non-HTTP trigger, run on demand like Azure's `POST /admin/functions/{name}`: the request body
 * is `{"input": <value>}` (empty means no input), the answer is InvokeResult as JSON.
 */
export async function serveNonHttp(ctx: ServeContext, inv: Invocation): Promise<void> {
  const body = await readBody(inv.req, ctx.bodyLimit)
  const input = parseInput(body)
  const data = triggerData(inv.fn.trigger.type, input)
  const { response } = await runInvocation(ctx.state, ctx.log, {
    fn: inv.fn,
    invocationId: inv.invocationId,
    // Always present: the library passes inputs positionally, handler(trigger, context).
    inputData: [{ name: inv.fn.trigger.name, data: data ?? {} }],
    triggerMetadata: {},
    traceContext: inv.traceContext,
  })
  const result: InvokeResult = { returnValue: fromTypedData(response.returnValue), outputs: {} }
  for (const out of response.outputData ?? []) {
    if (out.name) result.outputs[out.name] = fromTypedData(out.data)
  }
  const json = Buffer.from(JSON.stringify(result))
  inv.res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length })
  inv.res.end(json)
}

function parseInput(body: Buffer): unknown {
  if (body.length === 0) return undefined
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new BadInvokeBodyError('the invoke body must be JSON: {"input": <value>}')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadInvokeBodyError('the invoke body must be a JSON object: {"input": <value>}')
  }
  return (value as { input?: unknown }).input
}

/**
 * The trigger value. A timer run by hand gets the TimerInfo the host builds for a manual run
 * (PascalCase, camel-cased by the library): not past due, no schedule status.
 */
function triggerData(type: string, input: unknown): RpcTypedData | undefined {
  if ((input === undefined || input === null) && type.toLowerCase() === 'timertrigger') {
    return toTypedData({ Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false })
  }
  return toTypedData(input)
}
