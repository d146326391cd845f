/**
 * What a node costs on this machine: sandbox start (runtime probe), prepare (tmpfs + netns +
 * veth), specialize (overlay mount, config.json, runtime start), time to the process's first
 * output, destroy; and `node -e` run straight on the host for comparison.
 *
 *   node --import tsx test/bench/sandbox.ts [iterations=20] [stateDir]
 *
 * Needs root, runc (or crun), overlayfs. Prints medians; nothing here asserts on time.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildNodeBase } from '../../host/build/node-base.ts'
import { createSandbox } from '../../host/sandbox/sandbox.ts'

const iterations = Number(process.argv[2] ?? 20)
const stateDir = process.argv[3] ?? (await mkdtemp(join(tmpdir(), 'thaw-bench-sandbox-')))
const SCRIPT = 'console.log("up")'

const samples: Record<string, number[]> = {}
const record = (name: string, ms: number) => (samples[name] ??= []).push(ms)

const base = await buildNodeBase({ outDir: '/var/tmp/thaw-cache/node-base-test', gzip: false })
let t = performance.now()
const sandbox = await createSandbox({ stateDir })
const createMs = performance.now() - t
try {
  for (let i = 0; i < iterations + 1; i++) {
    const warmup = i === 0
    t = performance.now()
    const node = await sandbox.prepareNode()
    const prepareMs = performance.now() - t
    t = performance.now()
    const proc = await node.specialize({
      lowerDir: base.rootfs,
      imageConfig: { Cmd: ['node', '-e', SCRIPT] },
      memoryBytes: 256 << 20,
      pids: 64,
    })
    const startMs = performance.now() - t
    await new Promise<void>((resolve) => {
      const stop = proc.onOutput((stream) => {
        if (stream === 'stdout') resolve(stop())
      })
    })
    const firstOutputMs = performance.now() - t
    await proc.exited
    const exitMs = performance.now() - t
    t = performance.now()
    await node.destroy()
    const destroyMs = performance.now() - t
    if (warmup) continue
    record('prepare: total', prepareMs)
    record('prepare: tmpfs + dirs', node.prepareTimings.scratchMs)
    record('prepare: netns + veth', node.prepareTimings.networkMs)
    record('specialize: overlay mount (+ user lookup)', proc.timings.mountMs)
    record('specialize: config.json', proc.timings.configMs)
    record('specialize: runtime start to PID', proc.timings.startMs)
    record('specialize: total (to PID)', startMs)
    record('specialize → first output of node -e', firstOutputMs)
    record('specialize → exit of node -e', exitMs)
    record('destroy (exited node)', destroyMs)
  }
  for (let i = 0; i < iterations + 1; i++) {
    t = performance.now()
    const child = spawn(base.rootfs + '/usr/bin/node', ['-e', SCRIPT], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { PATH: '/usr/bin:/bin' }, // as in a node: no NODE_EXTRA_CA_CERTS and the like
    })
    await once(child.stdout, 'data')
    const first = performance.now() - t
    await once(child, 'exit')
    if (i > 0) {
      record('host (no sandbox): node -e first output', first)
      record('host (no sandbox): node -e exit', performance.now() - t)
    }
  }
} finally {
  await sandbox.close()
  if (!process.argv[3]) await rm(stateDir, { recursive: true, force: true })
}

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!
console.log(
  `runtime: ${sandbox.runtime.name}; createSandbox (probe, cleanup, firewall): ${createMs.toFixed(1)} ms`,
)
console.log(`${iterations} iterations after one warm-up, ms:`)
console.log(
  `${'step'.padEnd(46)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'min'.padStart(8)}`,
)
for (const [name, xs] of Object.entries(samples)) {
  const cells = [quantile(xs, 0.5), quantile(xs, 0.9), Math.min(...xs)].map((v) =>
    v.toFixed(1).padStart(8),
  )
  console.log(`${name.padEnd(46)} ${cells.join(' ')}`)
}
