import type { CustomHandlerClient } from '../custom-handler/client.ts'
import { toDispatchOutput, toHandlerRequest } from '../custom-handler/dispatch-bridge.ts'
import { CustomHandlerError } from '../custom-handler/errors.ts'
import type { FunctionJsonFunction } from '../custom-handler/function-json.ts'
import { WorkerCallError, type WorkerClient } from '../worker/worker-client.ts'

/**
 * The largest body the payload protocol takes, whatever the app's limit: the host holds it whole
 * (Azure's default limit). A forwarded request streams, and only the app's limit applies.
 */
export const HANDLER_BODY_LIMIT = 100 * 1024 * 1024

export interface CustomHandlerWorkerClientOptions {
  client: CustomHandlerClient
  functions: FunctionJsonFunction[]
  /** The handler's `Logs` of one invocation. */
  onLogs?: (functionName: string, invocationId: string, logs: string[]) => void
  /** An invocation the handler failed (the caller gets a bare 500; the reason goes here). */
  onFailure?: (functionName: string, invocationId: string, message: string) => void
  /** The app's body limit (default and cap for the payload protocol: HANDLER_BODY_LIMIT). */
  bodyLimit?: number
}

/**
 * A custom handler behind the WorkerClient seam the front door dispatches to: each dispatch is
 * translated on the host's side (forwarded, or wrapped in the payload protocol and its HTTP
 * output turned back into a response; host/custom-handler). A handler that refuses the call
 * (non-2xx payload answer, or an answer that is not the protocol's JSON) gives an empty 500, as
 * the Functions host answers a failed invocation, and its reason goes to onFailure (the log); a body over the limit gives 413. A connection
 * that fails (the handler died) rejects, and the front door answers 502.
 */
export function createCustomHandlerWorkerClient(o: CustomHandlerWorkerClientOptions): WorkerClient {
  const byName = new Map(o.functions.map((f) => [f.name.toLowerCase(), f]))
  const find = (name: string) => {
    const fn = byName.get(name.toLowerCase())
    if (!fn) throw new WorkerCallError(404, `function "${name}" is not defined`)
    return fn
  }
  return {
    async dispatch(input) {
      const fn = find(input.functionName)
      const limit = Math.min(o.bodyLimit ?? HANDLER_BODY_LIMIT, HANDLER_BODY_LIMIT)
      let req
      try {
        req = await toHandlerRequest(input, limit, { stream: o.client.forwards(fn) })
      } catch (err) {
        if (err instanceof RangeError) return toDispatchOutput(text(413, err.message))
        throw err
      }
      try {
        const { answer, logs } = await o.client.http(fn, req, input.invocationId, input.signal)
        if (logs.length > 0) o.onLogs?.(fn.name, input.invocationId, logs)
        return toDispatchOutput(answer)
      } catch (err) {
        if (!(err instanceof CustomHandlerError)) throw err
        o.onFailure?.(fn.name, input.invocationId, err.message)
        // As the Functions host answers a failed invocation: no internals for the caller.
        return toDispatchOutput({
          status: 500,
          headers: [['content-length', '0']],
          body: Buffer.alloc(0),
        })
      }
    },
    async invoke(name, input, invocationId, signal) {
      const fn = find(name)
      try {
        const { returnValue, outputs, logs } = await o.client.invoke(
          fn,
          input,
          invocationId,
          signal,
        )
        if (logs.length > 0) o.onLogs?.(fn.name, invocationId, logs)
        return { returnValue, outputs }
      } catch (err) {
        if (!(err instanceof CustomHandlerError)) throw err
        o.onFailure?.(fn.name, invocationId, err.message)
        throw new WorkerCallError(500, err.message)
      }
    },
    close: () => o.client.close(),
    destroy: () => o.client.destroy(),
  }
}

function text(status: number, message: string) {
  return {
    status,
    headers: [['content-type', 'text/plain; charset=utf-8']] as [string, string][],
    body: Buffer.from(message),
  }
}
