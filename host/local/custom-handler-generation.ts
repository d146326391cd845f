import { randomUUID } from 'node:crypto'
import {
  createCustomHandlerClient,
  readFunctionJsonDir,
  startCustomHandler,
  CustomHandlerError,
  type CustomHandlerConfig,
  type FunctionJsonFunction,
} from '../custom-handler/index.ts'
import { toDispatchOutput, toHandlerRequest } from '../custom-handler/dispatch-bridge.ts'
import type { DispatchInput, DispatchOutput } from '../worker/index.ts'
import { LocalRunnerError } from './errors.ts'
import { createRefGate, lineSink, type EventSink, type Generation } from './generation.ts'

export interface CustomHandlerGenerationOptions {
  id: number
  scriptRoot: string
  config: CustomHandlerConfig
  env: Record<string, string>
  bodyLimit: number
  startTimeoutMs: number
  emit: EventSink
}

/**
 * A custom-handler app generation (any language): functions from `<name>/function.json`, the
 * handler started from host.json's executable, every invocation translated on this side
 * (host/custom-handler), since a custom-handler image may have no Node.js to run a worker.
 */
export async function startCustomHandlerGeneration(
  options: CustomHandlerGenerationOptions,
): Promise<Generation> {
  const { id, emit } = options
  const { functions, problems } = await readFunctionJsonDir(options.scriptRoot)
  const stdout = lineSink((line) =>
    emit({ type: 'output', generation: id, stream: 'stdout', line }),
  )
  const stderr = lineSink((line) =>
    emit({ type: 'output', generation: id, stream: 'stderr', line }),
  )
  let proc
  try {
    proc = await startCustomHandler({
      scriptRoot: options.scriptRoot,
      config: options.config,
      env: options.env,
      timeoutMs: options.startTimeoutMs,
      onOutput: (stream, chunk) => (stream === 'stdout' ? stdout : stderr)(chunk),
    })
  } catch (err) {
    if (err instanceof CustomHandlerError) {
      throw new LocalRunnerError('WORKER_START_FAILED', err.message, { cause: err })
    }
    throw err
  }
  const client = createCustomHandlerClient({
    baseUrl: proc.baseUrl,
    forwarding: options.config.enableForwardingHttpRequest,
  })
  const byName = new Map(functions.map((f) => [f.name.toLowerCase(), f]))
  const find = (name: string) => {
    const fn = byName.get(name.toLowerCase())
    if (!fn) throw new LocalRunnerError('FUNCTION_NOT_FOUND', `function "${name}" is not defined`)
    return fn
  }
  const gate = createRefGate()
  const exited = proc.exited.then((code) => {
    if (!gate.closed) emit({ type: 'generation-exited', generation: id, code })
  })

  /** Runs one call with invocation-start/-end events and the handler's Logs as user logs. */
  async function tracked<T extends { logs: string[] }>(
    fn: FunctionJsonFunction,
    invocationId: string,
    work: () => Promise<T>,
  ) {
    const functionName = fn.name
    emit({ type: 'invocation-start', generation: id, invocationId, functionName })
    const start = performance.now()
    try {
      const result = await work()
      for (const message of result.logs) {
        emit({
          type: 'log',
          generation: id,
          level: 'information',
          category: 'user',
          message,
          invocationId,
          functionName,
        })
      }
      emit({
        type: 'invocation-end',
        generation: id,
        invocationId,
        functionName,
        outcome: 'succeeded',
        durationMs: performance.now() - start,
      })
      return result
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      emit({
        type: 'invocation-end',
        generation: id,
        invocationId,
        functionName,
        outcome: 'failed',
        durationMs: performance.now() - start,
        error: { message: error.message, stack: error.stack },
      })
      throw err
    }
  }

  let closing: Promise<void> | undefined
  return {
    id,
    kind: 'custom-handler',
    functions,
    problems,
    streaming: false,
    model: null,
    acquire: () => gate.acquire(),
    async dispatch(input: DispatchInput): Promise<DispatchOutput> {
      const fn = find(input.functionName)
      const req = await toHandlerRequest(input, options.bodyLimit, { stream: client.forwards(fn) })
      const { answer } = await tracked(fn, input.invocationId, () =>
        client.http(fn, req, input.invocationId, input.signal),
      )
      return toDispatchOutput(answer)
    },
    async invoke(name, input, invocationId = randomUUID(), signal) {
      const fn = find(name)
      const { returnValue, outputs } = await tracked(fn, invocationId, () =>
        client.invoke(fn, input, invocationId, signal),
      )
      return { returnValue, outputs }
    },
    close(graceMs) {
      closing ??= (async () => {
        await gate.drain(graceMs)
        await client.close()
        await proc.stop(graceMs)
      })()
      return closing
    },
    exited,
  }
}
