import type { AppState, RegisteredFunction } from './app-state.ts'
import type {
  CoreInvocationContext,
  HookData,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcTypedData,
} from './core-types.ts'
import type { Log, LogScope } from './logger.ts'
import { defineReadOnly } from './read-only.ts'

export interface InvocationInput {
  fn: RegisteredFunction
  invocationId: string
  inputData: { name: string; data: RpcTypedData }[]
  triggerMetadata: Record<string, RpcTypedData>
  traceContext?: RpcInvocationRequest['traceContext']
}

export interface InvocationOutcome {
  response: RpcInvocationResponse
  /** The handler's result after the postInvocation hooks (streaming mode needs to know if it was empty). */
  result: unknown
}

/**
 * One invocation, in the worker's order (WORKER src/eventHandlers/InvocationHandler.ts):
 * invocation model → getArguments → preInvocation hooks (may replace inputs and the callback) →
 * invokeFunction → postInvocation hooks (run even when the handler threw; may replace result and
 * error) → rethrow the error if one is left → getResponse. Hooks run in registration order and
 * are awaited; a hook that throws fails the invocation.
 */
export async function runInvocation(
  state: AppState,
  log: Log,
  input: InvocationInput,
): Promise<InvocationOutcome> {
  const model = state.model
  if (!model) throw new Error('No programming model is set: the app registered no function.')
  const { fn, invocationId } = input
  const hookData: HookData = {}
  const scope: LogScope = { invocationId, functionName: fn.metadata.name, hookData }
  const coreCtx: CoreInvocationContext = {
    invocationId,
    request: {
      invocationId,
      functionId: fn.metadata.functionId,
      inputData: input.inputData,
      triggerMetadata: input.triggerMetadata,
      traceContext: input.traceContext,
    },
    metadata: fn.metadata,
    state: undefined,
    log: (level, category, message) => log(level, category, message, scope),
  }

  const invocationModel = await model.getInvocationModel(coreCtx)
  const { context, inputs } = await invocationModel.getArguments()
  scope.invocationContext = context
  const common = { hookData, appHookData: state.appHookData, invocationContext: context }

  const pre = defineReadOnly({ inputs, functionCallback: fn.callback }, common)
  await runHooks(state.hooks.preInvocation, pre, coreCtx, 'preInvocationHooks')

  const post = defineReadOnly(
    { inputs: pre.inputs, result: null as unknown, error: null as unknown },
    common,
  )
  coreCtx.state = 'invocation'
  try {
    post.result = await invocationModel.invokeFunction(context, pre.inputs, pre.functionCallback)
  } catch (err) {
    post.error = err
  } finally {
    coreCtx.state = undefined
  }
  await runHooks(state.hooks.postInvocation, post, coreCtx, 'postInvocationHooks')

  if (post.error !== null && post.error !== undefined) throw post.error
  return { response: await invocationModel.getResponse(context, post.result), result: post.result }
}

async function runHooks(
  hooks: ((context: object) => unknown)[],
  context: object,
  coreCtx: CoreInvocationContext,
  state: 'preInvocationHooks' | 'postInvocationHooks',
): Promise<void> {
  if (hooks.length === 0) return
  coreCtx.state = state
  try {
    for (const hook of [...hooks]) await hook(context)
  } finally {
    coreCtx.state = undefined
  }
}
