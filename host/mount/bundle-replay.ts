import { PassThrough } from 'node:stream'
import {
  BundleDecoder,
  type BundleHeader,
  type BundleRecordData,
} from '../../runtime/artifact/bundle.ts'
import { thawPaths } from '../../runtime/artifact/thaw-api.ts'
import { describeError } from '../../runtime/errors.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import type { RegistryResponse } from '../../runtime/oci/remote/index.ts'
import type { FrameLoader } from './frame-loader.ts'
import { resolveImage, type ResolvedImage, type ResolveOptions } from './resolve-image.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import type { SourceSet } from './source-set.ts'

export interface ReplayResult {
  /** A bundle was found (and streamed, perhaps only partly). */
  found: boolean
  bytes: number
  records: number
  /** Records whose frames did not verify (their frames are fetched on demand instead). */
  rejected: number
  /** The bundle's records (its header's), when one was found. */
  header?: BundleHeader
}

interface Expected {
  blob: number
  first: number
  resolve: () => void
  reject: (err: Error) => void
}

/** The answer to a bundle request: its body, or none (no profile, or no source answered). */
export type BundleAnswer = { found: false } | { found: true; body: AsyncIterable<Uint8Array> }

/**
 * A bundle whose header and record 0 (the index blob) have arrived: with the header's `start`,
 * everything a mount needs. The rest of the body is still streaming.
 */
export interface OpenedBundle {
  header: BundleHeader
  decoder: BundleDecoder
  /** Records complete so far, record 0 first. */
  records: BundleRecordData[]
  rest: AsyncIterator<Uint8Array>
  /** Body bytes read so far. */
  bytes: number
}

/** A bundle request under way, cancelled (its body too) when the mount closes or is not made. */
export interface PendingBundle {
  /** The answer read up to record 0; undefined when there is no bundle or it is unreadable. */
  opened: Promise<OpenedBundle | undefined>
  cancel(): void
}

/** Starts `requestBundle` with its own abort; `workload` names whose bundle ('' = the default). */
export function startBundle(
  sources: SourceSet,
  repository: string,
  manifest: Digest,
  warn?: (message: string) => void,
  workload = '',
): PendingBundle {
  const abort = new AbortController()
  // Never rejects: a bundle that cannot be had means on-demand reads, and a cancelled request
  // may have nobody awaiting it.
  const opened = requestBundle(sources, repository, manifest, {
    signal: abort.signal,
    warn,
    workload,
  })
    .then((answer) => (answer.found ? openBundle(answer.body) : undefined))
    .catch((err: unknown) => {
      if (!abort.signal.aborted) warn?.(`bundle: ${describeError(err)}`)
      return undefined
    })
  return { opened, cancel: () => abort.abort() }
}

/** Reads a bundle body until its header and record 0 are complete. */
export async function openBundle(body: AsyncIterable<Uint8Array>): Promise<OpenedBundle> {
  const rest = body[Symbol.asyncIterator]()
  const decoder = new BundleDecoder()
  const records: BundleRecordData[] = []
  let bytes = 0
  while (!decoder.header || (records.length === 0 && !decoder.done)) {
    const next = await rest.next()
    if (next.done) {
      decoder.end() // throws: cut short
      break
    }
    bytes += next.value.length
    records.push(...decoder.push(next.value))
  }
  return { header: decoder.header!, decoder, records, rest, bytes }
}

/**
 * resolveImage, with the bundle request started as soon as the manifest digest is known (it needs
 * nothing else), so its bytes are on the way while the artifact is resolved, its index parsed
 * and the filesystem mounted. A manifest already mounted (`known`) asks for no bundle.
 */
export async function resolveWithBundle(
  sources: SourceSet,
  reference: string,
  options: Omit<ResolveOptions, 'onManifest'> & {
    replay: boolean
    warn?: (message: string) => void
    /**
     * True for a manifest whose bundle is better decided once the image is resolved: one whose
     * bundle this host stored before (ImageMount then asks for it only if some of its frames are
     * gone from the cache).
     */
    defer?: (manifest: Digest) => boolean
    /** Whose bundle to ask for (the edge falls back to the unnamed default's). */
    workload?: string
  },
): Promise<{ image: ResolvedImage; bundle?: PendingBundle }> {
  let bundle: PendingBundle | undefined
  const start = (manifest: Digest) => {
    if (options.replay && !options.defer?.(manifest))
      bundle = startBundle(
        sources,
        parseImageReference(reference).repository,
        manifest,
        options.warn,
        options.workload,
      )
  }
  try {
    const bundleStart = async () => {
      const opened = await bundle?.opened
      const record0 = opened?.records[0]
      if (!opened || record0?.index !== 0) return undefined
      return { header: opened.header, record0: record0.bytes }
    }
    const image = await resolveImage(sources, reference, {
      ...options,
      onManifest: start,
      bundleStart,
    })
    return { image, bundle }
  } catch (err) {
    bundle?.cancel()
    throw err
  }
}

/** Bytes of a bundle body read ahead while nobody consumes it yet (the mount is being set up). */
const READ_AHEAD_BYTES = 64 * 2 ** 20

/**
 * Asks the sources in order for the image's prefetch bundle
 * (`GET /v2/<name>/_thaw/bundle/<manifest>?workload=`, 404 = no profile). Only the manifest digest is
 * needed, so the host starts it while it still resolves the artifact and parses the index; the
 * body keeps arriving meanwhile (up to READ_AHEAD_BYTES held in memory), so the link is busy
 * from the first round trip on. Sent by each source's registry client: with its credentials,
 * and with its deadline (`requestTimeoutMs`) for the headers and between body chunks.
 */
export async function requestBundle(
  sources: SourceSet,
  repository: string,
  manifest: Digest,
  options: { signal?: AbortSignal; warn?: (message: string) => void; workload?: string } = {},
): Promise<BundleAnswer> {
  const warn = options.warn ?? (() => {})
  const path = thawPaths.bundle(repository, manifest, options.workload)
  for (const source of sources.order()) {
    let res: RegistryResponse
    try {
      res = await source.client.extension(repository, {
        method: 'GET',
        path,
        signal: options.signal,
      })
    } catch (err) {
      if (options.signal?.aborted) return { found: false }
      warn(`bundle from ${source.url}: ${describeError(err)}`)
      continue
    }
    if (res.status === 404) {
      res.body.resume()
      return { found: false }
    }
    if (res.status !== 200) {
      res.body.resume()
      warn(`bundle from ${source.url}: HTTP ${res.status}`)
      continue
    }
    const body = new PassThrough({ highWaterMark: READ_AHEAD_BYTES })
    // A cancelled or broken body must not become an uncaught 'error' when nobody reads it yet
    // (the mount was not made); a reader still sees the error through its iterator.
    body.on('error', () => {})
    res.body.on('error', (err) => body.destroy(err))
    return { found: true, body: res.body.pipe(body) }
  }
  return { found: false }
}

/**
 * Streams a bundle (`requestBundle`'s answer) into the cache. As soon as the header arrives every
 * frame it announces is registered as in flight, so a read of one waits for its record instead
 * of fetching it again; each record is verified frame by frame against the index (the bundle
 * adds no trust) and stored. A record that does not verify, or a bundle cut short, releases its
 * waiters, who then fetch on demand.
 */
export async function replayBundle(
  image: ResolvedImage,
  opened: Promise<OpenedBundle | undefined>,
  loader: FrameLoader,
  options: {
    warn?: (message: string) => void
    /** Called when it is known whether there is a bundle: with true once its header arrived and
     * its frames are registered as in flight (reads from then on wait for them). */
    onFound?: (found: boolean) => void
    /** Filled in as the bundle streams (what it brought so far); the result is this object. */
    progress?: ReplayResult
  } = {},
): Promise<ReplayResult> {
  const warn = options.warn ?? (() => {})
  const found = options.onFound ?? (() => {})
  const result = options.progress ?? { found: false, bytes: 0, records: 0, rejected: 0 }
  const bundle = await opened
  if (!bundle) {
    found(false)
    return result
  }
  result.found = true
  result.header = bundle.header
  await stream(bundle, image, loader, result, warn, found)
  return result
}

async function stream(
  bundle: OpenedBundle,
  image: ResolvedImage,
  loader: FrameLoader,
  result: ReplayResult,
  warn: (message: string) => void,
  found: (found: boolean) => void,
): Promise<void> {
  const { header, decoder, rest } = bundle
  if (header.artifact !== image.artifact.digest) {
    warn(`bundle is for artifact ${header.artifact}, not ${image.artifact.digest}: ignored`)
    found(false)
    return
  }
  const expected = announce(header, image, loader)
  found(true)
  const stores: Promise<void>[] = []
  const store = (records: BundleRecordData[]) => {
    for (const r of records) {
      const e = expected[r.index]
      if (!e) continue
      result.records++
      stores.push(
        loader.storeRun(e.blob, e.first, r.bytes).then(
          () => e.resolve(),
          (err: Error) => {
            result.rejected++
            warn(`bundle record ${r.index} rejected: ${describeError(err)}`)
            e.reject(err)
          },
        ),
      )
    }
  }
  result.bytes = bundle.bytes
  try {
    store(bundle.records)
    for (let next = await rest.next(); !next.done; next = await rest.next()) {
      result.bytes += next.value.length
      store(decoder.push(next.value))
    }
    decoder.end()
  } catch (err) {
    warn(`bundle stream failed: ${describeError(err)}`)
  } finally {
    found(false)
    // Records still being stored settle their waiters themselves; only then are the records
    // that never arrived released (rejecting first would send waiters of a record being written
    // to fetch it again).
    await Promise.all(stores)
    const cut = new Error('bundle ended before this record')
    for (const e of expected) e?.reject(cut)
  }
}

/** Registers every frame-aligned record's frames as in flight; others are skipped (undefined). */
function announce(
  header: BundleHeader,
  image: ResolvedImage,
  loader: FrameLoader,
): (Expected | undefined)[] {
  const byDigest = new Map<Digest, number>(image.index.blobs.map((b, i) => [b.digest, i]))
  return header.records.map((record) => {
    const b = byDigest.get(record.blob)
    if (b === undefined) return undefined // record 0, the index blob, is already here
    const frames = image.index.blobs[b]!.frames
    const first = frames.findIndex((f) => f.coff === record.offset)
    let last = first
    while (
      last >= 0 &&
      last < frames.length &&
      frames[last]!.coff + frames[last]!.clen < record.offset + record.length
    )
      last++
    const end = frames[last]
    if (first < 0 || !end || end.coff + end.clen !== record.offset + record.length) return undefined
    const covered = frames.slice(first, last + 1).filter((f) => !loader.blobs[b]!.has(f))
    if (covered.length === 0) return undefined
    let resolve!: () => void
    let reject!: (err: Error) => void
    const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)))
    done.catch(() => {})
    loader.blobs[b]!.track(covered, done)
    return { blob: b, first, resolve, reject }
  })
}
