import { stat } from 'node:fs/promises'
import { isAbsolute, join, posix } from 'node:path'
import { createCustomHandlerClient } from '../custom-handler/client.ts'
import { expandArguments, type CustomHandlerConfig } from '../custom-handler/config.ts'
import { readFunctionJsonDir, type FunctionJsonFunction } from '../custom-handler/function-json.ts'
import { waitForHandler } from '../custom-handler/process.ts'
import { parseBodyLimits } from '../request-body/index.ts'
import type { HttpFunctionSpec } from '../router/index.ts'
import type { NodeProcess } from '../sandbox/node-handle.ts'
import type { ImageAppConfig } from './app-config-in-image.ts'
import { createCustomHandlerWorkerClient } from './custom-handler-worker-client.ts'
import type { RunningApp, StartWorkerNodeOptions } from './start-worker-node.ts'
import { exitedBeforeReady, untilReady } from './until-ready.ts'

/**
 * The port the handler is told to listen on (FUNCTIONS_CUSTOMHANDLER_PORT) unless host.json
 * names one. A fixed port is always free: every node has its own network namespace.
 */
export const HANDLER_PORT = 7071

/** Azure's default for a custom handler to answer its first `GET /` (HttpWorkerOptions). */
const HANDLER_START_TIMEOUT_MS = 30_000

/**
 * Specializes a warm node for a custom-handler app (any language; the image needs no Node.js):
 * the image's own Entrypoint/Cmd and WorkingDir (`thaw deploy` puts the handler from host.json
 * there; an image without either gets host.json's executable, arguments and workingDirectory),
 * `%SETTING%` in the arguments expanded from the app settings, and FUNCTIONS_CUSTOMHANDLER_PORT
 * in the environment. The host reaches the handler over the node's veth at
 * `http://<node ip>:<port>`, forwarded to the node's loopback, so a handler listening on
 * 127.0.0.1 only (fine on Azure) is reached as well as one on all addresses. Ready when `GET /` gets any answer. Functions come from the image's
 * `<name>/function.json` files, read through the lease root with async fs (this process may
 * serve that FUSE mount: a synchronous read would deadlock).
 */
export async function startCustomHandlerNode(
  o: StartWorkerNodeOptions,
  app: ImageAppConfig & { customHandler: CustomHandlerConfig },
): Promise<RunningApp> {
  const handler = app.customHandler
  const { functions, problems } = await readFunctionJsonDir(join(o.lease.root, app.scriptRoot))
  for (const p of problems) {
    o.log.host('warn', `function ${p.function} skipped: ${p.message}`)
  }
  const port = handler.port ?? HANDLER_PORT
  const config = o.lease.image.config.config ?? {}
  const env = handlerEnv(o, app.scriptRoot, port)
  const [command, forwardMs] = await Promise.all([
    handlerCommand(o.lease.root, app.scriptRoot, config, handler),
    // Handlers written for Azure may listen on 127.0.0.1 only (host and handler share a container there).
    o.node.forwardPortToLoopback(port, o.signal),
  ])
  const proc = await o.node.specialize({
    lowerDir: o.lease.root,
    imageConfig: { ...config, WorkingDir: command.cwd },
    env,
    args: expandArguments(command.argv, { ...envMap(config.Env ?? []), ...env }),
    memoryBytes: o.memoryBytes,
    pids: o.pids,
    ...o.privileges,
    onOutput: (stream, chunk) => o.log.output(stream, chunk),
    owner: o.owner,
    signal: o.signal,
  })
  return attachHandler(o, app, { functions, port, proc, sandboxMs: forwardMs })
}

/**
 * Takes over a custom-handler node a host that died left running (sandbox takeKept), as
 * adoptWorkerNode does a worker's: the handler never knew its host, so there is nothing to
 * reconnect. Its port and functions are read from the image again (the node runs the revision
 * they came from), its forwarding rule is in its network namespace still, and it serves once it
 * answers `GET /`, as at its start.
 */
export async function adoptCustomHandlerNode(
  o: Omit<StartWorkerNodeOptions, 'owner'>,
  app: ImageAppConfig & { customHandler: CustomHandlerConfig },
  proc: NodeProcess,
): Promise<RunningApp> {
  const { functions } = await readFunctionJsonDir(join(o.lease.root, app.scriptRoot))
  const port = app.customHandler.port ?? HANDLER_PORT
  return attachHandler(o, app, { functions, port, proc, sandboxMs: 0 })
}

/** The host's side of a handler: the wait for its first answer, and the client of its port. */
async function attachHandler(
  o: Pick<StartWorkerNodeOptions, 'settings' | 'memoryBytes' | 'log' | 'signal'>,
  app: ImageAppConfig & { customHandler: CustomHandlerConfig },
  h: { functions: FunctionJsonFunction[]; port: number; proc: NodeProcess; sandboxMs: number },
): Promise<RunningApp> {
  const { functions, proc } = h
  const handler = app.customHandler
  const specialized = performance.now()
  const baseUrl = `http://${proc.ip}:${h.port}`
  const stopped = exitedBeforeReady(proc)
  await untilReady(
    waitForHandler(baseUrl, { stopped, timeoutMs: HANDLER_START_TIMEOUT_MS, signal: o.signal }),
    proc,
    o.signal,
  )
  const loadMs = performance.now() - specialized
  const client = createCustomHandlerWorkerClient({
    client: createCustomHandlerClient({ baseUrl, forwarding: handler.enableForwardingHttpRequest }),
    functions,
    bodyLimit: parseBodyLimits(o.settings, o).limits.maxBytes,
    onLogs: (fn, invocationId, logs) => o.log.handlerLogs(fn, invocationId, logs),
    onFailure: (fn, invocationId, message) => o.log.failed(fn, invocationId, message),
  })
  return {
    process: proc,
    client,
    functions: functions.filter(served).map(toSpec),
    allFunctions: functions.filter((f) => !f.disabled),
    routePrefix: app.routePrefix,
    customHeaders: app.customHeaders,
    timings: { sandboxMs: h.sandboxMs + proc.timings.totalMs, loadMs },
    exited: proc.exited,
    close: () => client.destroy(),
  }
}

/** The app settings and what the Functions host tells a custom handler (HOST HttpWorkerProcess). */
function handlerEnv(
  o: StartWorkerNodeOptions,
  scriptRoot: string,
  port: number,
): Record<string, string> {
  return {
    ...o.settings,
    FUNCTIONS_CUSTOMHANDLER_PORT: String(port),
    FUNCTIONS_HTTPWORKER_PORT: String(port),
    FUNCTIONS_CUSTOMHANDLER_WORKER_ID: o.node.id,
    FUNCTIONS_HTTPWORKER_ID: o.node.id,
    FUNCTIONS_APP_ROOT_PATH: scriptRoot,
  }
}

/** An image's Env (`NAME=value` lines) as a map: `%NAME%` in arguments sees it under the settings. */
function envMap(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of lines) {
    const eq = line.indexOf('=')
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

/**
 * The argv and working directory: the image's own when it has an Entrypoint or Cmd, else the
 * handler from host.json, a file of the app when there is one (HOST HttpWorkerDescription
 * resolves defaultExecutablePath against workingDirectory), else a command on PATH.
 */
async function handlerCommand(
  root: string,
  scriptRoot: string,
  config: { Entrypoint?: string[] | null; Cmd?: string[] | null; WorkingDir?: string },
  handler: CustomHandlerConfig,
): Promise<{ argv: string[]; cwd: string }> {
  const entry = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
  if (entry.length > 0) return { argv: entry, cwd: config.WorkingDir || scriptRoot }
  const cwd = posix.join(scriptRoot, handler.workingDirectory ?? '')
  let executable = handler.executable
  if (!isAbsolute(executable)) {
    const inApp = posix.join(cwd, executable)
    const file = await stat(join(root, inApp)).catch(() => undefined)
    if (file?.isFile()) executable = inApp
  }
  return { argv: [executable, ...handler.arguments], cwd }
}

function served(f: FunctionJsonFunction): boolean {
  return f.trigger.toLowerCase() === 'httptrigger' && !f.disabled
}

function toSpec(f: FunctionJsonFunction): HttpFunctionSpec {
  return { name: f.name, route: f.route, methods: f.methods, authLevel: f.authLevel ?? 'function' }
}
