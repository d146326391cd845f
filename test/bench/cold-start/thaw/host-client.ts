import { runCommand } from '../../../../host/os/run-command.ts'
import type { BenchLink } from '../link.ts'

export interface HostAnswer {
  status: number
  /** Lower-case names; the last value of a repeated header. */
  headers: Record<string, string>
  body: string
  /** curl's time_starttransfer: from the start of the request to the first byte of the answer. */
  ttfbMs: number
}

export interface HostCallOptions {
  method?: string
  body?: unknown
  /** `x-functions-key` (the master key for /admin). */
  key?: string
  signal?: AbortSignal
  timeoutMs?: number
}

const MARK = '\n--thaw-bench-ttfb--'

/**
 * One HTTP call to the thaw host with curl, run on the client's side of `link` (the host listens
 * inside the link's network namespace, so only a process in there reaches its 127.0.0.1). curl's
 * own start-up is not in the figure: `time_starttransfer` counts from the request's start.
 */
export async function callHost(
  link: Pick<BenchLink, 'wrap'>,
  url: string,
  options: HostCallOptions = {},
): Promise<HostAnswer> {
  const args = ['-s', '-S', '-D', '-', '-X', options.method ?? 'GET']
  if (options.key) args.push('-H', `x-functions-key: ${options.key}`)
  if (options.body !== undefined) {
    args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(options.body))
  }
  args.push('-w', `${MARK}%{time_starttransfer}`, url)
  const [command, wrapped] = link.wrap('curl', args)
  const { stdout } = await runCommand(command, wrapped, {
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? 300_000,
  })
  return parseCurlOutput(stdout)
}

/** `-D -` puts the head before the body; `-w` appends the timing after the mark. */
export function parseCurlOutput(stdout: string): HostAnswer {
  const at = stdout.lastIndexOf(MARK)
  if (at < 0) throw new Error(`unexpected curl output: ${stdout.slice(0, 500)}`)
  const ttfbMs = Number(stdout.slice(at + MARK.length).trim()) * 1000
  const text = stdout.slice(0, at)
  // Skip interim heads (100 Continue): the last head before the body is the answer's.
  let rest = text
  let head = ''
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) break
    head = rest.slice(0, end)
    rest = rest.slice(end + 4)
    if (!/^HTTP\/\S+ 1\d\d/.test(head)) break
  }
  const [statusLine, ...lines] = head.split('\r\n')
  const status = Number(statusLine?.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status, headers, body: rest, ttfbMs }
}

/** Polls `url` until it answers 200 (the host is up) or `timeoutMs` passes. */
export async function waitForHost(
  link: Pick<BenchLink, 'wrap'>,
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
  alive?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    signal?.throwIfAborted()
    if (alive && !alive()) throw new Error(`the host exited while starting: ${last}`)
    try {
      const answer = await callHost(link, url, { signal, timeoutMs: 5000 })
      if (answer.status === 200) return
      last = `HTTP ${answer.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms: ${last}`)
}
