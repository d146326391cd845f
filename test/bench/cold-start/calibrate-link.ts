import { runCommand } from '../../../host/os/run-command.ts'
import type { BenchLink } from './link.ts'
import type { LinkCalibration } from './results.ts'
import { spread } from './stats.ts'

/**
 * Measures what an emulated link delivers, with curl from the client's side: round trip (time to
 * first byte of `GET /v2/` on a kept-alive connection, first request dropped), throughput of one
 * blob download, and the delay proxy's CPU per MB moved; the same straight on the loopback for
 * comparison. `blobPath` is `/v2/<repo>/blobs/<digest>`.
 */
export async function calibrateLink(
  link: BenchLink,
  loopbackAddress: string,
  blobPath: string,
): Promise<LinkCalibration> {
  const direct = await probe((c, a) => [c, a], loopbackAddress, blobPath)
  const cpu0 = await link.proxyCpuMs()
  const through = await probe(link.wrap, link.registryAddress, blobPath)
  const cpu = (await link.proxyCpuMs()) - cpu0
  return {
    rttMs: through.rttMs,
    loopbackRttMs: direct.rttMs,
    throughputMbit: through.mbit,
    loopbackThroughputMbit: direct.mbit,
    blobBytes: through.bytes,
    proxyCpuMsPerMB: cpu / (through.bytes / 1e6),
  }
}

async function probe(wrap: BenchLink['wrap'], address: string, blobPath: string) {
  // -o applies to one URL: each gets its own, so only the -w lines reach stdout
  const urls = Array.from({ length: 21 }, () => ['-o', '/dev/null', `http://${address}/v2/`])
  const [c1, a1] = wrap('curl', ['-s', '-w', '%{time_starttransfer}\\n', ...urls.flat()])
  const times = (await runCommand(c1, a1)).stdout.trim().split('\n').slice(1).map(Number)
  const [c2, a2] = wrap('curl', [
    '-sf',
    '-o',
    '/dev/null',
    '-w',
    '%{speed_download} %{size_download}',
    `http://${address}${blobPath}`,
  ])
  const [speed, size] = (await runCommand(c2, a2, { timeoutMs: 300_000 })).stdout
    .trim()
    .split(' ')
    .map(Number)
  return { rttMs: spread(times).median * 1000, mbit: (speed! * 8) / 1e6, bytes: size! }
}
