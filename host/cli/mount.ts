import { writeFile } from 'node:fs/promises'
import { integer, registryCredentials, untilSignal } from './command.ts'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import { serializeProfile } from '../../runtime/profile/profile.ts'
import { AccessRecorder } from '../profile/access-recorder.ts'
import { BlobCache } from '../mount/blob-cache.ts'
import { FileCache } from '../mount/file-cache.ts'
import { IndexCache } from '../mount/index-cache.ts'
import { detachStaleMount } from '../mount/fuse-mount.ts'
import { createFrameDecoder } from '../mount/frame-decoder.ts'
import { ImageMount, MAX_READ_AHEAD_KB } from '../mount/image-mount.ts'
import { resolveWithBundle } from '../mount/bundle-replay.ts'
import { SourceSet } from '../mount/source-set.ts'

const USAGE = `usage: thaw mount IMAGE DIR [--edge URL ...] [--cache DIR]

Mounts IMAGE's streaming artifact lazily at DIR, in the foreground, until SIGINT or SIGTERM;
then unmounts and prints what it fetched.

options:
  --edge URL          an edge to fetch from (repeatable): the fastest healthy one first (round-trip
                      time and throughput, measured), the others in the order given, the
                      image's registry last
  --cache DIR         frame cache (default /var/tmp/thaw-cache/frames)
  --cache-bytes N     cache bound in bytes (default 10 GiB)
  --timeout MS        deadline of one request to one source (default 10000)
  --retry-after MS    how long a failed source is skipped (default 30000)
  --no-replay         do not fetch the prefetch bundle
  --no-background     do not fetch the rest of the image in the background
  --no-passthrough    read every file through FUSE (default: local files pass through, Linux 6.9+)
  --record FILE       record accesses; write the profile to FILE at exit
  --start-read-ahead KB
                      the kernel's read-ahead while recording or replaying (default 4; the
                      mount stays at it: it has no start that ends)
  --workload NAME     what runs: the profile recorded and the bundle replayed are NAME's
                      (default: the unnamed workload, the edge's default profile)

Registry credentials (for edges and registries with auth on): THAW_REGISTRY_USERNAME and
THAW_REGISTRY_PASSWORD.
`

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      edge: { type: 'string', multiple: true, default: [] },
      cache: { type: 'string', default: '/var/tmp/thaw-cache/frames' },
      'cache-bytes': { type: 'string', default: String(10 * 2 ** 30) },
      timeout: { type: 'string', default: '10000' },
      'retry-after': { type: 'string', default: '30000' },
      'no-replay': { type: 'boolean', default: false },
      'no-background': { type: 'boolean', default: false },
      'no-passthrough': { type: 'boolean', default: false },
      record: { type: 'string' },
      'start-read-ahead': { type: 'string' },
      workload: { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const [reference, target] = positionals
  if (!reference || !target || positionals.length > 2) throw usage('IMAGE and DIR are required')
  const dir = resolve(target)
  const say = (line: string) => process.stdout.write(`${line}\n`)
  const warn = (line: string) => process.stderr.write(`thaw mount: ${line}\n`)
  if (await detachStaleMount(dir)) warn(`detached a stale mount at ${dir}`)

  const registry = parseImageReference(reference).registry
  const origin = registry ? [`http://${registry}`] : []
  const sources = new SourceSet({
    urls: [...values.edge, ...origin],
    credentials: registryCredentials(),
    requestTimeoutMs: number(values.timeout, '--timeout'),
    retryAfterMs: number(values['retry-after'], '--retry-after'),
    measured: values.edge.length,
    warn,
  })
  const cacheBytes = number(values['cache-bytes'], '--cache-bytes')
  const cache = await BlobCache.open(values.cache, cacheBytes)
  const files = values['no-passthrough']
    ? undefined
    : await FileCache.open(values.cache, cacheBytes)
  // Lazy: a mount whose reads all come from the frame cache never starts a thread.
  const decoder = createFrameDecoder({ warn, lazy: true })
  let mount: ImageMount | undefined
  try {
    const replaying = !values['no-replay']
    const indexes = new IndexCache(200_000, join(values.cache, 'indexes'))
    const workload = values.workload
    const { image, bundle } = await resolveWithBundle(sources, reference, {
      replay: replaying,
      warn,
      indexes,
      workload,
    })
    mount = await ImageMount.mount({
      image,
      dir,
      cache,
      sources,
      replay: replaying,
      bundle,
      decoder,
      background: !values['no-background'],
      files,
      workload,
      startReadAheadKb:
        values['start-read-ahead'] === undefined
          ? undefined
          : integer('--start-read-ahead', values['start-read-ahead'], 0, MAX_READ_AHEAD_KB),
      warn,
    })
    const recorder = values.record
      ? new AccessRecorder({ subject: image.manifest, workload, limitMs: 3_600_000 })
      : undefined
    if (recorder) await mount.record(recorder)
    await mount.replayFound
    say(`mounted ${reference} (${image.manifest}) at ${dir}`)
    void mount.replay.then((r) => r.found && say(`bundle: ${r.records} records, ${r.bytes} bytes`))
    void mount.background.then((r) => r.complete && say('background fetch complete'))
    await untilSignal()
    if (recorder && values.record) await writeFile(values.record, serializeProfile(recorder.stop()))
    const s = mount.loader.stats
    const replay = await Promise.race([mount.replay, Promise.resolve(undefined)])
    const {
      reads: fuseReads,
      directReads: fuseDirectReads,
      passthroughOpens,
      requests: fuseRequests,
    } = mount.fuseStats
    say(
      `fetched: ${JSON.stringify({ ...s, bundleBytes: replay?.bytes ?? 0, bundleRecords: replay?.records ?? 0, fuseRequests, fuseReads, fuseDirectReads, passthroughOpens })}`,
    )
    return 0
  } finally {
    await mount?.close()
    await decoder.close()
    await cache.close()
    await files?.close()
    await sources.close()
    say('unmounted')
  }
}

function number(value: string, flag: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw usage(`${flag} must be a non-negative integer`)
  return n
}

function usage(message: string): ThawError {
  return new ThawError('USAGE', `${message}\n\n${USAGE}`, { fault: 'user' })
}
