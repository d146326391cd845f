import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AppLogs } from './app-logs.ts'
import type { LogRecord } from './log-record.ts'
import { parseSince, type Since } from './since.ts'

/** A comment line sent this often on an idle stream, so proxies and clients keep it open. */
const HEARTBEAT_MS = 15_000
/** Bytes a follower may leave unread before its stream is cut. */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024

/**
 * `GET /admin/apps/<name>/logs` (the caller checked the key and that the app exists):
 *
 * - `?since=` (parseSince: `5m`, an ISO time, `seq:N`) picks where the records start; without
 *   it, every record kept.
 * - Without `?follow=1`: `{"records":[LogRecord…]}`, oldest first.
 * - With `?follow=1`: the kept records, then each new one as it comes, until the client leaves.
 *   `Accept: text/event-stream` gets server-sent events (`id: <seq>`, `event: log`, `data:
 *   <LogRecord JSON>`; a reconnecting EventSource resumes after Last-Event-ID); anything else
 *   gets NDJSON (`application/x-ndjson`, one LogRecord per line, chunked).
 */
export function serveLogs(
  logs: AppLogs,
  app: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): void {
  const lastEventId = req.headers['last-event-id']
  const since: Since =
    typeof lastEventId === 'string' && /^\d+$/.test(lastEventId)
      ? { afterSeq: Number(lastEventId) }
      : parseSince(url.searchParams.get('since'))
  const follow = ['1', 'true'].includes(url.searchParams.get('follow') ?? '')
  if (!follow) {
    const body = Buffer.from(`${JSON.stringify({ records: logs.read(app, since) })}\n`)
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
    })
    return void res.end(body)
  }
  const sse = /text\/event-stream/.test(req.headers.accept ?? '')
  const write = sse
    ? (r: LogRecord) => res.write(`id: ${r.seq}\nevent: log\ndata: ${JSON.stringify(r)}\n\n`)
    : (r: LogRecord) => res.write(`${JSON.stringify(r)}\n`)
  res.writeHead(200, {
    'content-type': sse
      ? 'text/event-stream; charset=utf-8'
      : 'application/x-ndjson; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  })
  // Reading the backlog and subscribing happen in one turn: no record falls between them.
  for (const r of logs.read(app, since)) write(r)
  const unsubscribe = logs.follow(app, (r) => {
    // A follower that does not read is cut rather than buffered without end.
    if (res.writableLength > MAX_UNREAD_BYTES) return void res.destroy()
    write(r)
  })
  res.flushHeaders()
  const heartbeat = setInterval(() => res.write(sse ? ': keep-alive\n\n' : '\n'), HEARTBEAT_MS)
  heartbeat.unref()
  res.once('close', () => {
    clearInterval(heartbeat)
    unsubscribe()
  })
}
