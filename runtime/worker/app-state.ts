import type {
  FunctionCallback,
  HookCallback,
  HookData,
  HookName,
  ProgrammingModel,
  RpcBindingInfo,
  RpcFunctionMetadata,
} from './core-types.ts'

/** A function the app registered through `@azure/functions-core`.registerFunction. */
export interface RegisteredFunction {
  metadata: RpcFunctionMetadata
  callback: FunctionCallback
  /** The one trigger binding: its name (the key in bindings), type and options. */
  trigger: { name: string; type: string; binding: RpcBindingInfo }
}

/** Everything the app registered, plus the startup state the core API checks. One per process. */
export interface AppState {
  readonly functions: Map<string, RegisteredFunction>
  readonly hooks: Record<HookName, HookCallback[]>
  model: ProgrammingModel | undefined
  /** Set once startup is over: registerFunction throws from then on (the worker's indexing lock). */
  locked: boolean
  /** Shared by every hook (`appHookData`). */
  readonly appHookData: HookData
  /** `hookData` of the app-level hooks (appStart, appTerminate). */
  readonly appLevelOnlyHookData: HookData
  /** The entry point being loaded, for `scriptFile`. */
  currentEntryPoint: string | undefined
  /** The capabilities after model.getCapabilities(); `HttpUri` means streaming mode. */
  capabilities: Record<string, string>
}

export function createAppState(): AppState {
  return {
    functions: new Map(),
    hooks: { preInvocation: [], postInvocation: [], appStart: [], appTerminate: [], log: [] },
    model: undefined,
    locked: false,
    appHookData: {},
    appLevelOnlyHookData: {},
    currentEntryPoint: undefined,
    capabilities: {},
  }
}

/** Function names are case-insensitive in Azure Functions; an exact match wins. */
export function findFunction(state: AppState, name: string): RegisteredFunction | undefined {
  const exact = state.functions.get(name)
  if (exact) return exact
  const lower = name.toLowerCase()
  for (const fn of state.functions.values()) {
    if (fn.metadata.name.toLowerCase() === lower) return fn
  }
  return undefined
}
