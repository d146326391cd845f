/**
 * The control-channel messages between a host and the functions worker, one JSON object per line
 * (see worker-contract.ts for the transport). Plain types, no zod, so the worker can import them
 * for free; the host validates what it reads with worker-message-schemas.ts.
 *
 * worker → host: hello, ready | fatal, then log / invocation-start / invocation-end at any time.
 * host → worker: shutdown.
 */

/** RpcLogLevel of @azure/functions-core (types-core/index.d.ts), lower-camel strings. */
export type LogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none'
/** RpcLogCategory: `user` logs come from the app (context.log), `system` from the library or worker. */
export type LogCategory = 'user' | 'system' | 'customMetric'
export type AuthLevel = 'anonymous' | 'function' | 'admin'

/** First message, sent as soon as the control connection is up. */
export interface HelloMessage {
  type: 'hello'
  protocol: number
  pid: number
  /** process.version of the worker's Node.js, e.g. "v20.20.2". */
  node: string
  /** The worker's own version (what `@azure/functions-core`.version answers). */
  worker: string
}

/** One registered function, as the host needs it for routing and listing. */
export interface FunctionInfo {
  name: string
  /** The trigger binding's type, e.g. "httpTrigger", "timerTrigger". */
  trigger: string
  /** HTTP triggers: upper-case methods; null means any method. Null for other triggers. */
  methods: string[] | null
  /** HTTP triggers: the route template as written; null means "use the function name". */
  route: string | null
  /** HTTP triggers: the auth level (the library's default is anonymous). Null for other triggers. */
  authLevel: AuthLevel | null
  /** Whether thaw's hosts serve this trigger's event source. Every function can still be invoked. */
  servable: boolean
  /** Why not, when servable is false. */
  reason?: string
  /** The bindings as registered (binding name → binding info), for listings and admin APIs. */
  bindings: Record<string, unknown>
}

/** Startup finished (entry points loaded, appStart hooks run, registration locked). */
export interface ReadyMessage {
  type: 'ready'
  /** The address invocations go to: the unix socket path, or host:port with the real port. */
  listen: string
  /** The programming model the app set (`@azure/functions` and its version), null if none. */
  model: { name: string; version: string } | null
  /** True when the app called app.setup({ enableHttpStream: true }). */
  streaming: boolean
  functions: FunctionInfo[]
}

/** Startup failed (an entry point threw, or main matched no file). The worker exits after it. */
export interface FatalMessage {
  type: 'fatal'
  message: string
  stack?: string
}

export interface LogMessage {
  type: 'log'
  level: LogLevel
  category: LogCategory
  message: string
  invocationId?: string
  functionName?: string
}

export interface InvocationStartMessage {
  type: 'invocation-start'
  invocationId: string
  functionName: string
}

export interface InvocationEndMessage {
  type: 'invocation-end'
  invocationId: string
  functionName: string
  outcome: 'succeeded' | 'failed'
  durationMs: number
  error?: { message: string; stack?: string }
}

export type WorkerMessage =
  | HelloMessage
  | ReadyMessage
  | FatalMessage
  | LogMessage
  | InvocationStartMessage
  | InvocationEndMessage

/**
 * Stop: no new connections, let in-flight invocations finish (at most graceMs), run the appTerminate
 * hooks, exit 0. A worker whose control connection closes does the same with a short grace.
 */
export interface ShutdownMessage {
  type: 'shutdown'
  graceMs: number
}

export type HostMessage = ShutdownMessage

/**
 * The worker's HTTP answer for a non-HTTP trigger (request body: `{"input": <value>}`, like
 * Azure's `POST /admin/functions/{name}`): 200 with this JSON, or 500 with InvokeFailure.
 */
export interface InvokeResult {
  /** The function's return value ($return binding, or the raw return for non-HTTP triggers). */
  returnValue: unknown
  /** Values set on other output bindings (context.extraOutputs), by binding name. */
  outputs: Record<string, unknown>
}

export interface InvokeFailure {
  error: { message: string; stack?: string }
}
