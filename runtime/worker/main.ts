/**
 * The functions worker: provides `@azure/functions-core` to a Node.js function app, runs it, and
 * serves its invocations over HTTP. Started by a host as `node worker.mjs` (see
 * runtime/protocol/worker-contract.ts and README.md beside this file).
 */
import { createServer, Agent } from 'node:http'
import { resolve } from 'node:path'
import {
  DEFAULT_BODY_LIMIT,
  WORKER_PROTOCOL_VERSION,
  WorkerEnv,
} from '../protocol/worker-contract.ts'
import { createAppState } from './app-state.ts'
import { connectControl } from './control-client.ts'
import { createCoreApi } from './core-api.ts'
import { describeFunction } from './function-info.ts'
import { installCoreModule } from './install-core-module.ts'
import { createInvocationHandler } from './invocation-server.ts'
import { listenOn } from './listen.ts'
import { createLog } from './logger.ts'
import { defineReadOnly } from './read-only.ts'
import { startApp } from './start-app.ts'

export const WORKER_VERSION = '0.1.0'

async function main(): Promise<void> {
  const controlPath = process.env[WorkerEnv.control]
  const listen = process.env[WorkerEnv.listen]
  if (!controlPath || !listen) {
    process.stderr.write(`thaw worker: ${WorkerEnv.control} and ${WorkerEnv.listen} must be set\n`)
    process.exit(2)
  }
  const scriptRoot = resolve(process.env[WorkerEnv.scriptRoot] || process.cwd())
  process.chdir(scriptRoot)

  const reconnect = Number(process.env[WorkerEnv.controlReconnect])
  const control = await connectControl(controlPath, {
    reconnectMs: Number.isFinite(reconnect) && reconnect > 0 ? reconnect : undefined,
  })
  control.send({
    type: 'hello',
    protocol: WORKER_PROTOCOL_VERSION,
    pid: process.pid,
    node: process.version,
    worker: WORKER_VERSION,
  })
  const state = createAppState()
  const log = createLog(state, control.send)
  installCoreModule(createCoreApi(state, log))
  // A stray rejection in app code is logged, not fatal; an uncaught exception ends the worker,
  // as in Azure's worker (the process state is unknown after it).
  process.on('unhandledRejection', (reason) => {
    log('error', 'system', `Worker unhandled promise rejection: ${describe(reason)}`)
  })
  process.on('uncaughtException', (err) => {
    log('critical', 'system', `Worker uncaught exception: ${describe(err)}`)
    void control.close().finally(() => process.exit(1))
  })

  try {
    await startApp(state, { scriptRoot, main: process.env[WorkerEnv.main], log })
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    control.send({ type: 'fatal', message: e.message, stack: e.stack })
    await control.close()
    process.exit(1)
  }

  const httpUri = state.capabilities.HttpUri
  const limit = Number(process.env[WorkerEnv.bodyLimit])
  const handler = createInvocationHandler(
    {
      state,
      log,
      bodyLimit: Number.isFinite(limit) && limit > 0 ? limit : DEFAULT_BODY_LIMIT,
      streamUri: httpUri ? new URL(httpUri) : undefined,
      streamAgent: new Agent({ keepAlive: true }),
    },
    control.send,
    process.env[WorkerEnv.invocationEvents] === 'failed' ? 'failed' : 'all',
  )
  const server = createServer({ keepAliveTimeout: 60_000 }, handler)
  const address = await listenOn(server, listen)
  control.send({
    type: 'ready',
    listen: address,
    model: state.model ? { name: state.model.name, version: state.model.version } : null,
    streaming: Boolean(httpUri),
    functions: [...state.functions.values()].map(describeFunction),
  })

  let stopping = false
  const shutdown = async (graceMs: number) => {
    if (stopping) return
    stopping = true
    const deadline = Date.now() + graceMs
    server.close()
    server.closeIdleConnections()
    await handler.drained(deadline)
    const context = defineReadOnly(
      {},
      { hookData: state.appLevelOnlyHookData, appHookData: state.appHookData },
    )
    try {
      await withDeadline(
        (async () => {
          for (const hook of [...state.hooks.appTerminate]) await hook(context)
        })(),
        deadline,
      )
    } catch (err) {
      log('error', 'system', `appTerminate hook failed: ${describe(err)}`)
    }
    await control.close()
    process.exit(0)
  }
  control.onShutdown((grace) => void shutdown(grace))
  process.on('SIGTERM', () => void shutdown(5000))
  process.on('SIGINT', () => void shutdown(5000))
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

async function withDeadline(work: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>(
    (r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))),
  )
  await Promise.race([work, timeout])
  clearTimeout(timer)
}

await main()
