import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { FUNCTIONS_HOST_VERSION } from '../../runtime/protocol/worker-contract.ts'
import { authorize } from '../router/index.ts'
import type { FrontDoorOptions } from './front-door.ts'
import { answer, header } from './http-answers.ts'

/**
 * The part of Azure's admin API that matters locally (HOST Controllers/*.cs):
 *   GET|POST /admin/host/ping                  liveness, no key
 *   GET      /admin/host/status                 state and version (master key)
 *   GET      /admin/functions                   the function list (master key)
 *   POST     /admin/functions/{name} {"input"}  run any function, 202 Accepted (master key)
 *   any      /admin/warmup                      run the warmup function, if there is one
 * The master key is checked only when keys are enforced.
 */
export async function handleAdmin(
  options: FrontDoorOptions,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const path = url.pathname.replace(/\/+$/, '').toLowerCase()
  const method = req.method ?? 'GET'
  if (path === '/admin/host/ping') return answer(res, 200)
  if (path === '/admin/warmup') return warmup(options, res)
  if (options.keys) {
    const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
    if (!authorize('admin', keyed, options.keys).ok) return answer(res, 401)
  }
  const served = options.served()
  if (path === '/admin/host/status' && method === 'GET') {
    return json(res, 200, {
      state: served ? 'Running' : 'Error',
      version: FUNCTIONS_HOST_VERSION,
      processUptime: Math.round(process.uptime() * 1000),
    })
  }
  if (path === '/admin/functions' && method === 'GET') {
    return json(res, 200, served ? [...served.functions.values()] : [])
  }
  const m = /^\/admin\/functions\/([^/]+)$/.exec(url.pathname.replace(/\/+$/, ''))
  if (m && method === 'POST') {
    const name = decodeURIComponent(m[1]!)
    const fn = served?.functions.get(name.toLowerCase())
    if (!served || !fn) return answer(res, 404)
    const body = await readJson(req)
    if (body === undefined) return answer(res, 400, 'the body must be JSON: {"input": <value>}')
    const release = served.generation.acquire()
    if (!release) return answer(res, 503, 'the app is reloading')
    // Azure runs the function in the background and answers 202 at once.
    void served.generation
      .invoke(fn.name, (body as { input?: unknown }).input, randomUUID())
      .catch(() => {}) // the failure is reported by the invocation-end event
      .finally(release)
    return answer(res, 202)
  }
  answer(res, 404)
}

async function warmup(options: FrontDoorOptions, res: ServerResponse) {
  const served = options.served()
  const fn =
    served &&
    [...served.functions.values()].find((f) => f.trigger.toLowerCase() === 'warmuptrigger')
  if (served && fn) {
    const release = served.generation.acquire()
    try {
      if (release) await served.generation.invoke(fn.name, {}, randomUUID())
    } catch {
      return answer(res, 500)
    } finally {
      release?.()
    }
  }
  answer(res, 200)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > 1_048_576) return undefined
    chunks.push(c as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined
  } catch {
    return undefined
  }
}

function json(res: ServerResponse, status: number, value: unknown) {
  const body = Buffer.from(JSON.stringify(value))
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
  })
  res.end(body)
}
