import type { IncomingMessage, ServerResponse } from 'node:http'

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()]
  return Array.isArray(v) ? v.join(',') : v
}

/** A host-level answer: empty body (Azure's 401/404/405 are empty), or a short text. */
export function answer(res: ServerResponse, status: number, text?: string): void {
  const body = text ? Buffer.from(`${text}\n`) : Buffer.alloc(0)
  const headers: Record<string, string | number> = { 'content-length': body.length }
  if (text) headers['content-type'] = 'text/plain; charset=utf-8'
  res.writeHead(status, headers)
  res.end(body)
}
