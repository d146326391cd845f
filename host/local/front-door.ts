import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestBodyLimits } from '../request-body/index.ts'
import { applyCors, type CorsOptions } from '../front-door/cors.ts'
import { serveRequest, type DoorApp } from '../front-door/request-pipeline.ts'
import type { KeySet } from '../router/index.ts'
import { handleAdmin } from './admin.ts'
import { LocalRunnerError } from './errors.ts'
import type { EventSink } from './generation.ts'
import { answer } from './http-answers.ts'
import type { Served } from './served.ts'

export interface FrontDoorOptions {
  served(): Served | undefined
  /** Keys to enforce; undefined skips auth, as func start does without --enableAuth. */
  keys: KeySet | undefined
  cors: CorsOptions | undefined
  /** The app's body limits (host/request-body), read per request. */
  bodyLimits(): RequestBodyLimits
  homepage: boolean
  emit: EventSink
}

/**
 * The runner's HTTP entry: the admin API (admin.ts, after CORS as in Azure's host), and every
 * other request through the request pipeline the host uses too (front-door/request-pipeline.ts),
 * over the current generation. A reload between routing and the dispatch is retried on the new
 * generation.
 */
export function createFrontDoor(options: FrontDoorOptions) {
  const door = localDoor(options)
  return (req: IncomingMessage, res: ServerResponse) => {
    void handle(options, door, req, res).catch((err) => {
      options.emit({
        type: 'note',
        level: 'error',
        message: `request failed: ${(err as Error).message}`,
      })
      if (!res.headersSent) answer(res, 500)
      else res.destroy()
    })
  }
}

async function handle(
  options: FrontDoorOptions,
  door: DoorApp,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const path = req.url ?? '/'
  if (/^\/admin(\/|\?|$)/i.test(path)) {
    if (options.cors && applyCors(options.cors, req, res)) return
    return handleAdmin(options, req, res, new URL(path, 'http://localhost'))
  }
  await serveRequest(door, req, res, path)
}

function localDoor(options: FrontDoorOptions): DoorApp {
  return {
    routing: () => options.served()?.routing,
    keys: options.keys,
    cors: options.cors,
    get bodyLimits() {
      return options.bodyLimits()
    },
    homepage: options.homepage,
    requestTimeoutMs: undefined,
    origin: (req) => `http://${req.headers.host ?? 'localhost'}`,
    log: (level, message) => {
      if (level === 'debug') return
      const note = level === 'info' ? 'information' : level === 'warn' ? 'warning' : 'error'
      options.emit({ type: 'note', level: note, message })
    },
    async acquire() {
      for (let attempt = 0; attempt < 3; attempt++) {
        const served = options.served()
        if (!served)
          throw new LocalRunnerError('NO_GENERATION', 'no worker is running: see the runner output')
        const release = served.generation.acquire()
        if (!release) continue // a reload switched generations just now: take the new one
        return {
          routing: served.routing,
          dispatch: (input) => served.generation.dispatch(input),
          release,
        }
      }
      throw new LocalRunnerError('NO_GENERATION', 'the app is reloading')
    },
  }
}
