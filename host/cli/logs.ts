import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import type { LogRecord } from '../logs/log-record.ts'
import { parseSince } from '../logs/since.ts'

const USAGE = `usage: thaw logs APP [options]     an app's log on a host (what its functions logged, failures
                                  with their stack, its nodes' output)

options:
      --host URL        the host (default http://127.0.0.1:7071)
      --master-key K    the host's master key (or THAW_MASTER_KEY)
  -f, --follow          keep printing new records as they come (Ctrl-C stops)
      --since WHEN      from this far back (90s, 5m, 2h, 1d), an ISO time, or seq:N
      --json            one JSON record per line, as the host sends them
  -h, --help            this help
`

/** `thaw logs APP`: `GET /admin/apps/<app>/logs` (with ?follow=1, an NDJSON stream). */
export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string' },
        'master-key': { type: 'string' },
        follow: { type: 'boolean', short: 'f' },
        since: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw usageError(`${(err as Error).message}\n\n${USAGE}`)
  }
  const v = parsed.values
  if (v.help) return (void process.stdout.write(USAGE), 0)
  const [app, ...extra] = parsed.positionals
  if (!app || extra.length > 0) throw usageError(`expected one app name\n\n${USAGE}`)
  const masterKey = v['master-key'] ?? process.env.THAW_MASTER_KEY
  if (!masterKey) throw usageError('needs --master-key (or THAW_MASTER_KEY)')
  parseSince(v.since) // a bad --since is the user's, said before any request
  const url = new URL(
    `/admin/apps/${encodeURIComponent(app)}/logs`,
    v.host ?? 'http://127.0.0.1:7071',
  )
  if (v.since) url.searchParams.set('since', v.since)
  if (v.follow) url.searchParams.set('follow', '1')
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const res = await fetch(url, {
      headers: { 'x-functions-key': masterKey, accept: 'application/x-ndjson' },
      signal: stop.signal,
    }).catch((err: unknown) => {
      throw new ThawError(
        'HOST_UNREACHABLE',
        `cannot reach the host at ${url.origin}: ${causeOf(err)}`,
        { fault: 'user' },
      )
    })
    if (!res.ok) {
      const body = (await res.json().catch(() => undefined)) as
        { error?: { message?: string } } | undefined
      throw new ThawError(
        'LOGS_FAILED',
        `the host answered ${res.status}: ${body?.error?.message ?? res.statusText}`,
        { fault: 'user' },
      )
    }
    const print = (r: LogRecord) =>
      process.stdout.write(v.json ? `${JSON.stringify(r)}\n` : formatRecord(r))
    if (!v.follow) {
      for (const r of ((await res.json()) as { records: LogRecord[] }).records) print(r)
      return 0
    }
    await readLines(res, (line) => print(JSON.parse(line) as LogRecord)).catch((err: unknown) => {
      if (!stop.signal.aborted) throw err
    })
    return 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/**
 * One record as a line (more for a multi-line message, indented):
 * `2026-12-03T14:01:02.345Z hello-0 info  hello 6f1c2a3b  Hello from the function`
 */
export function formatRecord(r: LogRecord): string {
  const where = [
    r.node ?? '-',
    r.level.padEnd(5),
    r.function ?? '-',
    r.invocationId?.slice(0, 8) ?? '-',
  ]
  const [first, ...rest] = r.message.split('\n')
  const lines = [`${r.time} ${where.join(' ')}  ${first}`, ...rest.map((l) => `    ${l}`)]
  return `${lines.join('\n')}\n`
}

async function readLines(res: Response, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true })
    const lines = buffered.split('\n')
    buffered = lines.pop()!
    for (const line of lines) if (line.trim() !== '') onLine(line) // empty lines: keep-alives
  }
}

function usageError(message: string): ThawError {
  return new ThawError('LOGS_OPTIONS_INVALID', message, { fault: 'user' })
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}
