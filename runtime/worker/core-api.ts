import { basename } from 'node:path'
import { FUNCTIONS_HOST_VERSION } from '../protocol/worker-contract.ts'
import type { LogCategory, LogLevel } from '../protocol/worker-messages.ts'
import type { AppState } from './app-state.ts'
import type {
  FunctionCallback,
  FunctionMetadata,
  HookCallback,
  HookName,
  ProgrammingModel,
} from './core-types.ts'
import { Disposable } from './disposable.ts'
import type { Log } from './logger.ts'

/**
 * The worker API level thaw implements, reported as `version` / `hostVersion`: Node.js worker
 * 3.10 (log hooks) under a Functions host 4.x new enough for HTTP streaming (4.28) and log hooks
 * (4.34). The library does not read them; other packages may.
 */
export const CORE_API_VERSION = '3.10.1'
export const HOST_API_VERSION = FUNCTIONS_HOST_VERSION

const HOOK_NAMES: readonly HookName[] = [
  'preInvocation',
  'postInvocation',
  'appStart',
  'appTerminate',
  'log',
]

/**
 * The `@azure/functions-core` module object (types-core/index.d.ts), over one AppState.
 * Behaviour follows the Node.js worker (src/coreApi/registerFunction.ts, src/hooks/registerHook.ts,
 * src/coreApi/setProgrammingModel.ts), messages included, since apps and tests see them.
 */
export function createCoreApi(state: AppState, log: Log) {
  return {
    version: CORE_API_VERSION,
    get hostVersion() {
      return HOST_API_VERSION
    },
    Disposable,

    registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
      if (state.locked) throw new Error('A function can only be registered during app startup.')
      const id = metadata.functionId || metadata.name
      if (state.functions.has(id)) {
        throw new Error(`A function with id "${id}" has already been registered.`)
      }
      const triggers = Object.entries(metadata.bindings ?? {}).filter(([, b]) =>
        /trigger$/i.test(b.type ?? ''),
      )
      const [trigger] = triggers
      if (!trigger || triggers.length > 1) {
        throw new Error(`Function "${metadata.name}" must have exactly one trigger binding.`)
      }
      state.functions.set(id, {
        metadata: {
          name: metadata.name,
          functionId: id,
          scriptFile: state.currentEntryPoint ? basename(state.currentEntryPoint) : undefined,
          bindings: metadata.bindings,
          // What the .NET host consumes: each binding as JSON with its name inside.
          rawBindings: Object.entries(metadata.bindings).map(([name, b]) =>
            JSON.stringify({ ...b, name }),
          ),
          retryOptions: metadata.retryOptions,
        },
        callback,
        trigger: { name: trigger[0], type: trigger[1].type ?? '', binding: trigger[1] },
      })
      return new Disposable(() => {
        if (state.locked) throw new Error('A function can only be disposed during app startup.')
        state.functions.delete(id)
      })
    },

    registerHook(hookName: string, callback: HookCallback): Disposable {
      if (!HOOK_NAMES.includes(hookName as HookName)) {
        // The library maps a system RangeError on 'log' to "requires host v4.34"; keep the shape.
        throw Object.assign(new RangeError(`Unrecognized hook "${hookName}"`), {
          isAzureFunctionsSystemError: true,
        })
      }
      const list = state.hooks[hookName as HookName]
      list.push(callback)
      return new Disposable(() => {
        const i = list.indexOf(callback)
        if (i !== -1) list.splice(i, 1)
      })
    },

    setProgrammingModel(model: ProgrammingModel): void {
      state.model = model
      log(
        'information',
        'system',
        `Setting Node.js programming model to "${model.name}" version "${model.version}"`,
      )
    },

    getProgrammingModel(): ProgrammingModel | undefined {
      return state.model
    },

    /** Also the library's feature probe for HTTP streaming (src/setup.ts): it must exist. */
    log(level: LogLevel, category: LogCategory, message: string): void {
      log(level, category, message)
    },
  }
}

export type CoreApi = ReturnType<typeof createCoreApi>
