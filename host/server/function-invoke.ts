import { randomUUID } from 'node:crypto'
import { ThawError } from '../../runtime/errors.ts'
import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import type { App } from '../apps/app-spec.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import type { InvocationTrigger } from '../logs/recent-invocations.ts'
import type { NodeSlot } from '../pool/app-nodes.ts'
import type { Pool } from '../pool/pool.ts'
import { WorkerCallError } from '../worker/worker-client.ts'

export interface InvokeContext {
  pool: Pool
  logs: AppLogs
}

/** A slot on a node of the app, taken for one run of a function it has. */
export interface TakenFunction {
  slot: NodeSlot
  fn: FunctionInfo
  invocationId: string
}

/**
 * Takes a slot on a ready node of the app (a cold start when it has none, as a request would)
 * and finds the function there by name, any trigger (Azure's names are case-insensitive).
 * FUNCTION_NOT_FOUND (404) when the app has no such function.
 */
export async function takeFunction(
  ctx: InvokeContext,
  app: App,
  name: string,
  signal?: AbortSignal,
): Promise<TakenFunction> {
  const invocationId = randomUUID()
  const slot = await ctx.pool.nodesOf(app).acquire(signal, invocationId)
  const fn = slot.started.allFunctions.find((f) => f.name.toLowerCase() === name.toLowerCase())
  if (!fn) {
    slot.release()
    throw new ThawError('FUNCTION_NOT_FOUND', `app "${app.name}" has no function "${name}"`, {
      fault: 'user',
    })
  }
  return { slot, fn, invocationId }
}

/**
 * Runs a taken function with `input` (the worker's non-HTTP invoke: `{"input": …}`, the
 * trigger's value), within the app's request timeout, releases the slot and records the run in
 * the recent invocations. Never rejects: a failure is in the app's log (the worker's
 * invocation-end, or here when the node itself failed) and in the record's status (500).
 */
export async function runFunction(
  ctx: InvokeContext,
  app: App,
  taken: TakenFunction,
  input: unknown,
  trigger: InvocationTrigger,
): Promise<void> {
  const { slot, fn, invocationId } = taken
  const started = performance.now()
  let status = 200
  try {
    await slot.started.client.invoke(
      fn.name,
      input,
      invocationId,
      AbortSignal.timeout(app.limits.requestTimeoutMs),
    )
    // The node's first run ends its cold start: the image's profile recording stops here.
    if (slot.first) slot.started.firstResponse()
  } catch (err) {
    status = 500
    // A function that threw is logged with its stack by its node; anything else is logged here.
    if (!(err instanceof WorkerCallError)) {
      ctx.logs.append(app.name, {
        node: slot.node.id,
        invocationId,
        function: fn.name,
        level: 'error',
        source: 'host',
        message: `the ${trigger} run of ${fn.name} failed on its node: ${(err as Error).message}`,
      })
    }
  } finally {
    slot.release()
  }
  ctx.logs.invocations.add({
    id: invocationId,
    app: app.name,
    function: fn.name,
    trigger,
    status,
    durationMs: performance.now() - started,
    cold: slot.first,
    node: slot.node.id,
    revision: app.revision,
  })
}
