/**
 * Registry client micro-benchmark against a real CNCF distribution (Debian's docker-registry) on
 * loopback. Prints what it measured; asserts nothing.
 *
 *   npx tsx test/bench/oci-client.bench.ts
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256Of } from '../../runtime/oci/digest.ts'
import { createRegistryClient } from '../../runtime/oci/remote/registry-client.ts'

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

async function startRegistry() {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-bench-registry-'))
  const port = await freePort()
  const config = join(dir, 'config.yml')
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  )
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/v2/`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
      await rm(dir, { recursive: true, force: true })
    },
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const registry = await startRegistry()
const client = createRegistryClient({ registry: registry.url })
try {
  const blob = randomBytes(64 * 1024 * 1024)
  const digest = sha256Of(blob)
  let t = performance.now()
  await client.pushBlob(
    'bench/blob',
    blob,
    { digest, size: blob.length },
    { monolithicMaxBytes: 0, chunkSize: 8 * 1024 * 1024 },
  )
  const pushMs = performance.now() - t
  console.log(
    `push 64 MiB in 8 MiB chunks: ${pushMs.toFixed(0)} ms (${(64 / (pushMs / 1000)).toFixed(0)} MiB/s)`,
  )

  t = performance.now()
  await client.readBlob('bench/blob', digest)
  const readMs = performance.now() - t
  console.log(
    `readBlob 64 MiB, verified: ${readMs.toFixed(0)} ms (${(64 / (readMs / 1000)).toFixed(0)} MiB/s)`,
  )

  for (const concurrency of [1, 8]) {
    const n = 2000
    const latencies: number[] = []
    let next = 0
    const start = performance.now()
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++
          const offset = (i * 7919 * 4096) % (blob.length - 4096)
          const t0 = performance.now()
          await client.fetchRange('bench/blob', digest, offset, offset + 4095)
          latencies.push(performance.now() - t0)
        }
      }),
    )
    const total = performance.now() - start
    latencies.sort((a, b) => a - b)
    console.log(
      `${n} range requests of 4 KiB, concurrency ${concurrency}: ${(n / (total / 1000)).toFixed(0)} req/s, ` +
        `p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
    )
  }
} finally {
  await client.close()
  await registry.stop()
}
