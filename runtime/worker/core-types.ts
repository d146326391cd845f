/**
 * The parts of `@azure/functions-core` the worker implements, written from the library's
 * declaration file (azure-functions-nodejs-library types-core/index.d.ts, not shipped on npm).
 * Only what the worker reads or produces is typed; the rest passes through as unknown.
 */
import type { LogCategory, LogLevel } from '../protocol/worker-messages.ts'

export type HookData = Record<string, unknown>
export type FunctionCallback = (...args: unknown[]) => unknown
export type HookName = 'preInvocation' | 'postInvocation' | 'appStart' | 'appTerminate' | 'log'
export type HookCallback = (context: object) => unknown

export interface Disposable {
  dispose(): void
}

export interface RpcBindingInfo {
  type?: string | null
  direction?: 'in' | 'out' | 'inout' | null
  dataType?: string | null
  properties?: Record<string, unknown> | null
  [key: string]: unknown
}

export interface FunctionMetadata {
  name: string
  functionId?: string
  bindings: Record<string, RpcBindingInfo>
  retryOptions?: unknown
}

export interface RpcNullableString {
  value?: string | null
}

export interface RpcHttpCookie {
  name?: string | null
  value?: string | null
  domain?: RpcNullableString | null
  path?: RpcNullableString | null
  expires?: { value?: { seconds?: number | null; nanos?: number | null } | null } | null
  secure?: { value?: boolean | null } | null
  httpOnly?: { value?: boolean | null } | null
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone' | null
  maxAge?: { value?: number | null } | null
}

export interface RpcHttpData {
  method?: string | null
  url?: string | null
  headers?: Record<string, string> | null
  body?: RpcTypedData | null
  params?: Record<string, string> | null
  statusCode?: string | null
  query?: Record<string, string> | null
  enableContentNegotiation?: boolean | null
  cookies?: RpcHttpCookie[] | null
  nullableHeaders?: Record<string, RpcNullableString> | null
  nullableParams?: Record<string, RpcNullableString> | null
  nullableQuery?: Record<string, RpcNullableString> | null
}

export interface RpcTypedData {
  string?: string | null
  json?: string | null
  bytes?: Uint8Array | null
  stream?: Uint8Array | null
  http?: RpcHttpData | null
  int?: number | null
  double?: number | null
  collectionBytes?: { bytes?: Uint8Array[] | null } | null
  collectionString?: { string?: string[] | null } | null
  collectionDouble?: { double?: number[] | null } | null
  collectionSint64?: { sint64?: number[] | null } | null
}

export interface RpcInvocationRequest {
  invocationId: string
  functionId: string
  inputData: { name: string; data: RpcTypedData }[]
  triggerMetadata: Record<string, RpcTypedData>
  traceContext?: { traceParent?: string; traceState?: string; attributes?: Record<string, string> }
  retryContext?: unknown
}

export interface RpcInvocationResponse {
  invocationId?: string | null
  outputData?: { name?: string | null; data?: RpcTypedData | null }[] | null
  returnValue?: RpcTypedData | null
}

export interface RpcFunctionMetadata {
  name: string
  functionId: string
  scriptFile?: string
  bindings: Record<string, RpcBindingInfo>
  rawBindings: string[]
  retryOptions?: unknown
}

export type InvocationState = 'preInvocationHooks' | 'postInvocationHooks' | 'invocation'

export interface CoreInvocationContext {
  invocationId: string
  request: RpcInvocationRequest
  metadata: RpcFunctionMetadata
  state?: InvocationState
  log(level: LogLevel, category: LogCategory, message: string): void
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>
}

export interface ProgrammingModel {
  name: string
  version: string
  getInvocationModel(coreContext: CoreInvocationContext): InvocationModel | Promise<InvocationModel>
  getCapabilities?(
    defaults: Record<string, string>,
  ): Record<string, string> | Promise<Record<string, string>>
}
