import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { FunctionInfo, InvokeResult } from '../../runtime/protocol/worker-messages.ts'
import { bundleWorker } from '../../runtime/worker/bundle.ts'
import { CustomHandlerError } from '../custom-handler/index.ts'
import { parseBodyLimits, type RequestBodyLimits } from '../request-body/index.ts'
import { WorkerCallError } from '../worker/index.ts'
import { readAppConfig, type AppConfig } from './app-config.ts'
import { buildAppEnvironment } from './app-environment.ts'
import { startCustomHandlerGeneration } from './custom-handler-generation.ts'
import { LocalRunnerError } from './errors.ts'
import { corsFromSettings } from '../front-door/cors.ts'
import { createFrontDoor } from './front-door.ts'
import type { EventSink, Generation } from './generation.ts'
import { createGenerations, type Generations } from './generations.ts'
import { startNodeGeneration } from './node-generation.ts'
import { parseRunnerOptions, type ParsedRunnerOptions, type RunnerOptions } from './options.ts'
import { serve, type Served } from './served.ts'
import { resolveLocalEntry } from './typescript-entry.ts'
import { watchApp } from './watch.ts'
import { openTimerStatusStore } from '../timers/timer-status-store.ts'
import { startLocalTimers } from './local-timers.ts'
import type { TimerScheduler } from '../timers/timer-scheduler.ts'

/** A function app running locally: the `func start` of thaw, as an API (miniflare's shape). */
export interface Runner {
  /** Resolves with the server's URL once the first generation is ready; rejects if it cannot start. */
  readonly ready: Promise<URL>
  /** A request through the runner's HTTP server (routing, keys, CORS included); the URL's origin is replaced. */
  dispatchFetch(input: string | URL | Request, init?: RequestInit): Promise<Response>
  /** Runs any function (non-HTTP triggers included) with an input, like POST /admin/functions/{name}. */
  invoke(name: string, input?: unknown): Promise<InvokeResult>
  /** The functions the current generation serves. */
  functions(): FunctionInfo[]
  /** The current routing state (route table, functions, problems), for the CLI's listing. */
  served(): Served | undefined
  /** Starts a new generation and switches to it (what a file change does with `watch`). */
  reload(): Promise<void>
  /** Stops everything; idempotent. */
  dispose(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Starts an app folder's functions behind a local HTTP server. Options are validated at once. */
export function createRunner(options: RunnerOptions): Runner {
  const opts = parseRunnerOptions(options)
  opts.scriptRoot = resolve(opts.scriptRoot)
  const emit: EventSink = (event) => opts.logger?.(event)
  const state: RunnerState = { opts, emit, disposed: false }
  const ready = start(state)
  ready.catch(() => {})
  let disposing: Promise<void> | undefined
  const dispose = () => (disposing ??= stop(state, ready))

  const runner: Runner = {
    ready,
    async dispatchFetch(input, init) {
      const base = await ready
      const original = input instanceof Request ? new URL(input.url) : new URL(String(input), base)
      const url = new URL(`${original.pathname}${original.search}`, base)
      return fetch(input instanceof Request ? new Request(url, input) : url, init)
    },
    async invoke(name, input) {
      await ready
      return invoke(state, name, input)
    },
    functions: () => [...(state.served?.functions.values() ?? [])],
    served: () => state.served,
    async reload() {
      await ready
      await state.generations?.reload('reload()')
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  }
  return runner
}

interface RunnerState {
  opts: ParsedRunnerOptions
  emit: EventSink
  disposed: boolean
  config?: AppConfig
  /** From the app's environment (settings and local.settings.json), once it is known. */
  bodyLimits?: RequestBodyLimits
  server?: Server
  socketDir?: string
  generations?: Generations
  served?: Served
  unwatch?: () => void
  timers?: TimerScheduler
}

async function start(state: RunnerState): Promise<URL> {
  const { opts, emit } = state
  const config = (state.config = await readAppConfig(opts.scriptRoot, {
    localSettings: opts.localSettings,
  }))
  let started!: () => void
  const startedP = new Promise<void>((r) => (started = r))
  const url = await listen(state, startedP)
  const { env, messages } = buildAppEnvironment({
    base: process.env,
    localSettings: config.localSettings,
    settings: opts.settings,
    scriptRoot: opts.scriptRoot,
    port: Number(url.port),
  })
  for (const message of messages) emit({ type: 'note', level: 'warning', message })
  const body = parseBodyLimits(env)
  for (const problem of body.problems)
    emit({ type: 'note', level: 'warning', message: `${problem}; using the default` })
  state.bodyLimits = body.limits
  const launch = await launcher(state, config, env)
  const generations = (state.generations = createGenerations({
    launch,
    graceMs: opts.shutdownGraceMs,
    emit,
  }))
  const allow = opts.functions ?? config.functions
  const timerStore = await openTimerStatusStore(join(opts.scriptRoot, '.thaw', 'timers.json'))
  generations.onSwitch((next) => {
    state.served = serve(next, {
      routePrefix: config.routePrefix,
      allow,
      env,
      customHeaders: config.customHeaders,
    })
    // A new generation brings its own functions: its timers replace the old ones (and those
    // with runOnStartup fire again, as func start does after a restart).
    state.timers?.stop()
    if (!state.disposed)
      state.timers = startLocalTimers(state.served, {
        store: timerStore,
        env,
        emit,
        invoke: (name, input) => invoke(state, name, input),
      })
    void next.exited.then(() => {
      if (!state.disposed && generations.current() === next)
        void generations.reload('the worker exited')
    })
  })
  try {
    await generations.start()
  } catch (err) {
    // With watch on (thaw start), a broken app waits for the fix instead of exiting, as func does.
    if (!opts.watch || state.disposed) {
      started()
      await cleanup(state)
      throw err
    }
    emit({
      type: 'generation-failed',
      generation: 1,
      message: (err as Error).message,
      reload: false,
    })
  }
  started()
  if (opts.watch) {
    const watcher = watchApp(opts.scriptRoot, (path) => void generations.reload(path))
    state.unwatch = () => watcher.close()
  }
  if (state.disposed)
    throw new LocalRunnerError('RUNNER_DISPOSED', 'the runner was disposed while starting')
  return url
}

async function launcher(state: RunnerState, config: AppConfig, env: Record<string, string>) {
  const { opts, emit } = state
  const bodyLimit = state.bodyLimits!.maxBytes
  if (config.customHandler) {
    const handler = config.customHandler
    return (id: number) =>
      startCustomHandlerGeneration({
        id,
        scriptRoot: opts.scriptRoot,
        config: handler,
        env,
        bodyLimit,
        startTimeoutMs: opts.startTimeoutMs,
        emit,
      })
  }
  const workerPath = await bundleWorker({ cacheDir: opts.cacheDir })
  const socketDir = (state.socketDir = await mkdtemp(join(tmpdir(), 'thaw-')))
  return async (id: number): Promise<Generation> => {
    // Read again on each generation: a reload may be for a changed package.json or tsconfig.
    const entry = await resolveLocalEntry(opts.scriptRoot)
    return startNodeGeneration({
      id,
      workerPath,
      scriptRoot: opts.scriptRoot,
      env,
      socketDir,
      tsxLoader: entry.typescript ? import.meta.resolve('tsx') : undefined,
      main: entry.main,
      startTimeoutMs: opts.startTimeoutMs,
      emit,
    })
  }
}

async function listen(state: RunnerState, started: Promise<void>): Promise<URL> {
  const { opts, config } = state
  const cors = opts.cors ?? config?.localSettings?.cors
  const handler = createFrontDoor({
    served: () => state.served,
    keys: opts.keys,
    // --cors or local.settings.json's Host.CORS; else the settings a host reads (WEBSITE_CORS_*).
    cors: cors
      ? {
          origins: cors,
          credentials: opts.corsCredentials || !!config?.localSettings?.corsCredentials,
        }
      : corsFromSettings({ ...config?.localSettings?.values, ...opts.settings }),
    bodyLimits: () => state.bodyLimits ?? parseBodyLimits({}).limits,
    homepage:
      (opts.settings?.AzureWebJobsDisableHomepage ?? process.env.AzureWebJobsDisableHomepage) !==
      'true',
    emit: state.emit,
  })
  // Requests that arrive while the first generation starts wait for it.
  const server = (state.server = createServer(
    (req, res) => void started.then(() => handler(req, res)),
  ))
  server.keepAliveTimeout = 5000
  server.listen(opts.port, opts.host)
  try {
    await once(server, 'listening')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new LocalRunnerError(
        'PORT_IN_USE',
        `Port ${opts.port} is unavailable. Close the process using that port, or specify another port using --port [-p].`,
      )
    }
    throw err
  }
  const { port } = server.address() as { port: number }
  return new URL(`http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/`)
}

async function invoke(state: RunnerState, name: string, input: unknown): Promise<InvokeResult> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const served = state.served
    if (!served || state.disposed)
      throw new LocalRunnerError('RUNNER_DISPOSED', 'the runner is not running')
    const fn = served.functions.get(name.toLowerCase())
    if (!fn) throw new LocalRunnerError('FUNCTION_NOT_FOUND', `function "${name}" is not defined`)
    const release = served.generation.acquire()
    if (!release) continue
    try {
      return await served.generation.invoke(fn.name, input, randomUUID())
    } catch (err) {
      if (err instanceof WorkerCallError || err instanceof CustomHandlerError) {
        const e = new LocalRunnerError(
          'FUNCTION_FAILED',
          `function "${fn.name}" failed: ${err.message}`,
          { cause: err },
        )
        throw e
      }
      throw err
    } finally {
      release()
    }
  }
  throw new LocalRunnerError('NO_GENERATION', 'the app kept reloading; try again')
}

async function stop(state: RunnerState, ready: Promise<URL>): Promise<void> {
  state.disposed = true
  await ready.catch(() => {})
  await cleanup(state)
}

async function cleanup(state: RunnerState): Promise<void> {
  state.unwatch?.()
  state.timers?.stop()
  const server = state.server
  if (server) {
    const closed = new Promise<void>((r) => server.close(() => r()))
    server.closeIdleConnections()
    const timer = setTimeout(() => server.closeAllConnections(), state.opts.shutdownGraceMs)
    await state.generations?.close()
    server.closeAllConnections()
    await closed
    clearTimeout(timer)
  }
  if (state.socketDir) await rm(state.socketDir, { recursive: true, force: true })
}
