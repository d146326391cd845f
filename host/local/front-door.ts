import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import {
  checkDeclaredLength,
  closeAfterAnswerIfUnread,
  meterBody,
  refuseBody,
  type RequestBodyLimits,
} from '../request-body/index.ts'
import { authorize, type KeySet, type RouteEntry } from '../router/index.ts'
import { handleAdmin } from './admin.ts'
import { applyCors, type CorsOptions } from './cors.ts'
import type { EventSink } from './generation.ts'
import { answer, header } from './http-answers.ts'
import type { Served } from './served.ts'

export interface FrontDoorOptions {
  served(): Served | undefined
  /** Keys to enforce; undefined skips auth, as func start does without --enableAuth. */
  keys: KeySet | undefined
  cors: CorsOptions | undefined
  customHeaders: Record<string, string>
  /** The app's body limits (host/request-body), read per request. */
  bodyLimits(): RequestBodyLimits
  homepage: boolean
  emit: EventSink
}

/**
 * The runner's HTTP entry, in the order Azure's host applies: CORS, admin API, routing (404, 405
 * with Allow), disabled functions (404), keys (401), body limit (413), then the request is
 * forwarded to the current generation, its body metered as on the host (413 past the limit, 408
 * too slow; host/request-body), and its response streamed back with host.json's customHeaders.
 * A reload between routing and dispatch is retried on the new generation.
 */
export function createFrontDoor(options: FrontDoorOptions) {
  return (req: IncomingMessage, res: ServerResponse) => {
    void handle(options, req, res).catch((err) => {
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

async function handle(options: FrontDoorOptions, req: IncomingMessage, res: ServerResponse) {
  if (options.cors && applyCors(options.cors, req, res)) return
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  if (/^\/admin(\/|$)/i.test(url.pathname)) return handleAdmin(options, req, res, url)
  for (let attempt = 0; attempt < 3; attempt++) {
    const served = options.served()
    if (!served) return answer(res, 503, 'no worker is running: see the runner output')
    const route = routeOrAnswer(options, served, req, res, url)
    if (!route) return
    const release = served.generation.acquire()
    if (!release) continue // a reload switched generations just now: route again
    try {
      return await forward(options, served, route.entry, route.params, req, res)
    } finally {
      release()
    }
  }
  answer(res, 503, 'the app is reloading')
}

function routeOrAnswer(
  options: FrontDoorOptions,
  served: Served,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): { entry: RouteEntry; params: Record<string, string | null> } | undefined {
  const m = served.routes.match(req.method ?? 'GET', url.pathname)
  if (m.kind === 'not-found') {
    if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD'))
      homepage(options, res)
    else answer(res, 404)
    return undefined
  }
  if (m.kind === 'method-not-allowed') {
    res.setHeader('allow', m.allowed.join(', '))
    answer(res, 405)
    return undefined
  }
  const name = m.entry.fn.name
  const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
  const auth = options.keys ? authorize(m.entry.fn.authLevel, keyed, options.keys, name) : undefined
  if (served.disabled.has(name.toLowerCase()) && auth?.ok && auth.level === 'admin') {
    // A disabled function still runs for the master key (DOCS disable-function.md).
  } else if (served.disabled.has(name.toLowerCase())) {
    answer(res, 404)
    return undefined
  }
  if (auth && !auth.ok) {
    answer(res, 401)
    return undefined
  }
  const tooLarge = checkDeclaredLength(req, options.bodyLimits())
  if (tooLarge) {
    refuseBody(res, tooLarge)
    return undefined
  }
  return { entry: m.entry, params: m.params }
}

async function forward(
  options: FrontDoorOptions,
  served: Served,
  entry: RouteEntry,
  params: Record<string, string | null>,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const abort = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) abort.abort()
  })
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  const body = hasBody ? meterBody(req, options.bodyLimits()) : null
  body?.once('error', () => {
    if (body.refusal && res.headersSent) refuseBody(res, body.refusal)
  })
  let out
  try {
    out = await served.generation.dispatch({
      functionName: entry.fn.name,
      params,
      invocationId: randomUUID(),
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      signal: abort.signal,
    })
  } catch (err) {
    if (body?.refusal) return void refuseBody(res, body.refusal)
    throw err
  }
  if (body?.refusal) {
    out.body.destroy()
    return void refuseBody(res, body.refusal)
  }
  if (body) closeAfterAnswerIfUnread(req, res)
  res.writeHead(out.status, { ...out.headers, ...options.customHeaders })
  await pipeline(out.body, res)
}

function homepage(options: FrontDoorOptions, res: ServerResponse) {
  if (!options.homepage) return answer(res, 204)
  const html =
    '<!doctype html><title>Your Functions app is up and running</title>' +
    '<h1>Your Functions app is up and running</h1><p>Served locally by thaw.</p>'
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  })
  res.end(html)
}
