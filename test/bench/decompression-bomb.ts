/**
 * Peak memory of an edge converting a bomb (test/support/bomb-layers.ts): a tar layer of one file
 * of zeros, or of many empty files, gzip or zstd, pushed to `thaw edge` (a process of its own),
 * then `_thaw/status` polled until the conversion ends. Prints the edge's VmRSS before the push,
 * its VmHWM (peak) after the conversion, and its VmRSS then and 5 s later (what stays held).
 *
 *   npx tsx test/bench/decompression-bomb.ts [--gib 10 | --entries N] [--compression zstd|gzip]
 *       [--raise-limits] [--window-log N] [--thaw PATH] [--ceiling-mb 14000]
 *     --raise-limits  conversion.limits large enough for the bomb to convert fully
 *     --window-log    the zstd window the bomb declares (2^N bytes; level 3 declares 2^21)
 *     --thaw          another checkout's bin/thaw (e.g. `git archive` of an older commit)
 *     --ceiling-mb    the edge is killed when its VmRSS passes this (the machine is shared)
 */
import { parseArgs } from 'node:util'
import { MediaType } from '../../runtime/oci/index.ts'
import { buildEntryBomb, buildZeroBomb, type BombCompression } from '../support/bomb-layers.ts'
import { runCleanup } from '../support/cleanup.ts'
import { waitForConversion } from '../support/convert-image.ts'
import { startEdgeProcess } from '../support/edge-process.ts'
import { procMemory } from '../support/proc-memory.ts'
import { pushLayerImage } from '../support/push-layer-image.ts'

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '10' },
    entries: { type: 'string' },
    compression: { type: 'string', default: 'zstd' },
    'raise-limits': { type: 'boolean', default: false },
    'window-log': { type: 'string' },
    thaw: { type: 'string' },
    'ceiling-mb': { type: 'string', default: '14000' },
  },
})
const MB = 1e6
const compression = args.compression as BombCompression
const zstdWindowLog = args['window-log'] === undefined ? undefined : Number(args['window-log'])
const entries = args.entries === undefined ? undefined : Number(args.entries)
const bytes = Number(args.gib) * 2 ** 30
const raised = {
  maxLayerUncompressedBytes: 4 * bytes,
  maxImageUncompressedBytes: 4 * bytes,
  maxLayerEntries: 2 * (entries ?? 1),
  maxImageEntries: 2 * (entries ?? 1),
}

try {
  let t = performance.now()
  const bomb =
    entries === undefined
      ? await buildZeroBomb(bytes, compression, { zstdWindowLog })
      : await buildEntryBomb(entries, compression, { zstdWindowLog })
  const what = entries === undefined ? `${args.gib} GiB of zeros` : `${entries} empty files`
  const built = ((performance.now() - t) / 1000).toFixed(1)
  console.log(`bomb: ${what}, ${compression}, ${bomb.blob.length} bytes (built in ${built} s)`)

  const edge = await startEdgeProcess({
    thaw: args.thaw,
    config: args['raise-limits'] ? { conversion: { limits: raised } } : undefined,
  })
  let sampledPeak = 0
  void edge.process.exited.then((code) => {
    const told = edge.process
      .output()
      .split('\n')
      .filter((l) => !l.includes('"msg":"request"'))
    console.log(`edge exited (${code}), VmHWM sampled up to ${(sampledPeak / MB).toFixed(0)} MB:`)
    console.log(told.slice(-20).join('\n'))
  })
  const ceiling = Number(args['ceiling-mb']) * MB
  const watchdog = setInterval(() => {
    procMemory(edge.process.pid).then(
      (m) => {
        sampledPeak = Math.max(sampledPeak, m.peakRss)
        if (m.rss <= ceiling) return
        console.log(`edge VmRSS ${(m.rss / MB).toFixed(0)} MB is over the ceiling: killed`)
        void edge.process.kill()
      },
      () => {},
    )
  }, 100).unref()

  const before = await procMemory(edge.process.pid)
  t = performance.now()
  const mediaType = compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd
  const manifest = await pushLayerImage(edge.url, 'bomb/layer', 'v1', [{ ...bomb, mediaType }])
  const ended = (s: Record<string, unknown>) => !['pending', 'converting'].includes(String(s.state))
  const status = await waitForConversion(edge.url, 'bomb/layer', manifest, ended, 3_600_000)
  clearInterval(watchdog)
  const took = (performance.now() - t) / 1000
  const after = await procMemory(edge.process.pid)
  await new Promise((r) => setTimeout(r, 5000))
  const later = await procMemory(edge.process.pid)

  const reason = status.code ? ` ${String(status.code)}: ${String(status.reason)}` : ''
  console.log(`status: ${String(status.state)}${reason}`)
  console.log(`push to end of conversion: ${took.toFixed(1)} s`)
  console.log(`edge VmRSS before push: ${(before.rss / MB).toFixed(0)} MB`)
  console.log(`edge VmHWM (peak):      ${(after.peakRss / MB).toFixed(0)} MB`)
  const held = `${(after.rss / MB).toFixed(0)} MB, 5 s later ${(later.rss / MB).toFixed(0)} MB`
  console.log(`edge VmRSS after:       ${held}`)
} finally {
  await runCleanup()
}
