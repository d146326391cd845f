import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import { COLD_START_PHASES } from '../pool/cold-start.ts'
import { formatBytes } from '../deploy/deploy-output.ts'
import { runUp, type ColdRun } from '../up/run-up.ts'

const USAGE = `usage: thaw up [options]

Runs thaw's main job on one machine: a registry edge (origin mode, its own store), a host on lazy
mounts, the sample app from the templates deployed as a custom image and called cold twice (the
first records what it reads, the second replays it after the host's cache is cleared). Prints both
cold-start breakdowns and the URL to call, then keeps serving until Ctrl-C.

options:
  -p, --port <n>        host port (default 7071)
      --edge-port <n>   edge port (default 5000)
      --pool <n>        warm nodes (default 1)
      --state <dir>     state directory (default ./.thaw)
      --template <t>    sample app template (default http-typescript)
  -h, --help            this help
`

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      port: { type: 'string', short: 'p', default: '7071' },
      'edge-port': { type: 'string', default: '5000' },
      pool: { type: 'string', default: '1' },
      state: { type: 'string', default: '.thaw' },
      template: { type: 'string', default: 'http-typescript' },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const say = (line: string) => void process.stdout.write(`${line}\n`)
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const up = await runUp({
    stateDir: values.state,
    port: port(values.port, '--port'),
    edgePort: port(values['edge-port'], '--edge-port'),
    pool: port(values.pool, '--pool'),
    template: values.template,
    say,
    signal: stop.signal,
  })
  say('')
  say(table(up.record, up.replay))
  say('')
  say(`thaw is up. Call the function (a warm node answers now; the app scales to zero when idle):`)
  say(`  curl '${up.url}'`)
  say(`  admin: curl -H 'x-functions-key: ${up.host.masterKey}' ${up.host.url}/admin/status`)
  say('Ctrl-C stops the host and the edge.')
  if (!stop.signal.aborted) await new Promise((r) => stop.signal.addEventListener('abort', r, { once: true }))
  await up.close()
  return 0
}

function port(value: string, flag: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new ThawError('OPTIONS_INVALID', `${flag} must be a whole number from 0 to 65535, not "${value}"`, { fault: 'user' })
  }
  return n
}

/** Both cold starts side by side: the host's phases (ms), the client's time to first byte, traffic. */
function table(record: ColdRun, replay: ColdRun): string {
  const rows: [string, string, string][] = [['', 'cold, recording', 'cold, replaying']]
  for (const phase of COLD_START_PHASES) {
    rows.push([`${phase} ms`, record.timings![phase].toFixed(1), replay.timings![phase].toFixed(1)])
  }
  rows.push(['first byte at client ms', record.ttfbMs.toFixed(1), replay.ttfbMs.toFixed(1)])
  const traffic = (r: ColdRun) => `${r.traffic.bundles} bundle + ${r.traffic.blobReads} range, ${formatBytes(r.traffic.bytes)}`
  rows.push(['edge requests', traffic(record), traffic(replay)])
  rows.push(['answer', JSON.stringify(record.body), JSON.stringify(replay.body)])
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ')).join('\n')
}
