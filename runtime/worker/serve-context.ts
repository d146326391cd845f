import type { Agent, IncomingMessage, ServerResponse } from 'node:http'
import type { AppState, RegisteredFunction } from './app-state.ts'
import type { RpcInvocationRequest } from './core-types.ts'
import type { Log } from './logger.ts'

/** What every serve-* step shares for the life of the worker. */
export interface ServeContext {
  state: AppState
  log: Log
  bodyLimit: number
  /** The library's own HTTP server (capability HttpUri) in streaming mode. */
  streamUri: URL | undefined
  /** Keep-alive connections to that server. */
  streamAgent: Agent
}

/** One invocation request from the host, already resolved to a function. */
export interface Invocation {
  req: IncomingMessage
  res: ServerResponse
  fn: RegisteredFunction
  invocationId: string
  params: Record<string, string | null>
  traceContext: RpcInvocationRequest['traceContext']
}
