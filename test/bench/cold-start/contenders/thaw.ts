import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serializeProfile } from '../../../../runtime/profile/profile.ts'
import { cpuMs } from '../child.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { createLink, type BenchLink } from '../link.ts'
import { parseColdStartHeader } from '../thaw/cold-start-header.ts'
import { startEdge, type BenchEdge } from '../thaw/thaw-edge.ts'
import { expectOk, startBenchHost, type BenchHost } from '../thaw/thaw-host.ts'
import { dropCaches } from '../worker-session.ts'

export type ThawVariant = 'cold' | 'profile' | 'again'

/** Link indices for the edge's links: apart from the runner's (0, 1, 2) so names never clash. */
let nextLinkIndex = 10
export const edgeLinkIndex = () => nextLinkIndex++

/**
 * thaw's own rows, driven as processes as a user would run them: `thaw edge` (origin mode, its
 * own store) on the host's loopback with the image pushed by skopeo and converted on push;
 * `thaw host` on the client side of the emulated link (tbf + delay proxy in front of the edge);
 * the app created with `PUT /admin/apps/<name>`. One cold start: the app drained (scale to
 * zero), `POST /admin/cache/clear`, the page cache dropped, a warm node waiting (as in the cached
 * rows), then `GET /<app>/api/hello`; t0 is the request's start, the end its first byte (curl's
 * time_starttransfer on the client side). Phases come from the host's `x-thaw-cold-start`.
 *
 * - `cold`: no profile: its host runs with `--no-profiles`, so no start records or replays and
 *   each run's start reads what it needs on demand, as an image's first start does. The app is
 *   created once in prepare (the node the host starts for a new app drained before any run).
 * - `profile`: one recorded start in prepare, waited until the edge has re-laid the artifact by
 *   the profile; every run then replays the prefetch bundle.
 * - `again`: as `profile`, plus one replaying start in prepare; the host's cache is then kept
 *   between runs (not cleared), only the app drained and the page cache dropped: a cold start on
 *   a host that ran the image before (index, frames and whole-file copies cached).
 */
export function thawContender(variant: ThawVariant): Contender {
  let ctx: ContenderContext | undefined
  let edge: BenchEdge | undefined
  let edgeLink: BenchLink | undefined
  let host: BenchHost | undefined
  let app = ''
  let bytesRead: number | undefined
  let recordingMs: number | undefined
  return {
    id: `thaw-${variant}`,
    label: LABELS[variant],
    description: DESCRIPTIONS[variant],
    offline: false,
    appliesTo: () => true,
    async prepare(context) {
      ctx = context
      edge = await startEdge(join(context.scratchDir, 'edge-store'))
      edgeLink = await createLink(context.link.spec, edge.port, edgeLinkIndex())
      host = await startBenchHost({
        link: edgeLink,
        edgeUrl: `http://${edgeLink.registryAddress}`,
        stateDir: join(context.scratchDir, 'host-state'),
        pool: 1,
        profiles: variant !== 'cold',
      })
      if (variant === 'cold') {
        app = `bench-${context.image.name}-cold`
        await deploy(context, edge, host, edgeLink, `thaw-cold/${context.image.name}`, app)
        // Creating the app starts a node to learn its functions: drained (once ready) before t0.
        expectOk('drain', await host.admin('POST', `/admin/apps/${app}/drain`))
      } else {
        app = `bench-${context.image.name}-${variant}`
        const repository = `thaw-${variant}/${context.image.name}`
        ;({ bytesRead, recordingMs } = await recordProfile(
          context,
          edge,
          host,
          edgeLink,
          repository,
          app,
        ))
        if (variant === 'again') {
          expectOk('drain', await host.admin('POST', `/admin/apps/${app}/drain`))
          expectOk('first replaying start', await host.request(`/${app}/api/hello`))
        }
        // The recording node would hold the mount (and fetch the rest in the background) while
        // the other contenders run.
        expectOk('drain', await host.admin('POST', `/admin/apps/${app}/drain`))
      }
    },
    async coldStart(signal): Promise<ColdStartSample> {
      if (!ctx || !edge || !host || !edgeLink) throw new Error('prepare first')
      expectOk('drain', await host.admin('POST', `/admin/apps/${app}/drain`, undefined, signal))
      if (variant !== 'again')
        expectOk('cache clear', await host.admin('POST', '/admin/cache/clear', undefined, signal))
      await host.waitWarm(120_000, signal)
      await dropCaches()
      const before = await edge.counters()
      const cpu0 = await edgeLink.proxyCpuMs()
      const [host0, edge0] = [await cpuMs(host.child.pid), await cpuMs(edge.child.pid)]
      const answer = await host.request(`/${app}/api/hello`, { signal })
      const [host1, edge1] = [await cpuMs(host.child.pid), await cpuMs(edge.child.pid)]
      const after = await edge.counters()
      // A start that did not answer 2xx has no time worth reporting: the runner records the error.
      expectOk(`GET /${app}/api/hello`, answer)
      const header = answer.headers['x-thaw-cold-start']
      const timings = header ? parseColdStartHeader(header) : {}
      const { total, ...phases } = timings
      // Scale the app to zero now: its node would hold the image's mount (one per manifest
      // digest, shared across repositories), and the next run must mount it afresh.
      expectOk(
        'drain after',
        await host.admin('POST', `/admin/apps/${app}/drain`, undefined, signal),
      )
      return {
        ttfbMs: answer.ttfbMs,
        bytesFetched: after.bytes - before.bytes,
        requests: after.requests - before.requests,
        status: answer.status,
        phases: {
          ...phases,
          ...(total === undefined
            ? {}
            : { 'outside the host (client, link)': answer.ttfbMs - total }),
        },
        extra: {
          delayProxyCpuMs: (await edgeLink.proxyCpuMs()) - cpu0,
          // The host's own process (all its threads; not the node's processes) and the edge's.
          hostCpuMs: host1 - host0,
          edgeCpuMs: edge1 - edge0,
          ...(bytesRead === undefined ? {} : { bytesReadByFunction: bytesRead }),
          ...(recordingMs === undefined ? {} : { recordingStartMs: recordingMs }),
          ...(header ? {} : { noColdStartHeader: 1 }),
        },
      }
    },
    async cleanup() {
      await host?.close()
      await edgeLink?.close()
      await edge?.close()
      host = edgeLink = edge = undefined
    },
  }
}

const LABELS: Record<ThawVariant, string> = {
  cold: 'thaw, cold, no profile',
  profile: 'thaw, cold, with profile',
  again: 'thaw, cold again on the same host',
}
const DESCRIPTIONS: Record<ThawVariant, string> = {
  cold: 'thaw host --no-profiles + edge: streaming artifact, lazy FUSE mount, app drained, host cache cleared and page cache dropped; nothing recorded or replayed (reads on demand)',
  profile: 'as thaw-cold, after one recorded start: the prefetch bundle is replayed',
  again:
    'as thaw-profile, but the host cache is kept between runs (index, frames, whole-file copies): app drained, page cache dropped',
}

// requests: the edge's request counter between two /metrics scrapes, so it may include one scrape.

/** Push to the edge (loopback: deploy time is not measured), wait for the conversion, create the app. */
async function deploy(
  ctx: ContenderContext,
  edge: BenchEdge,
  host: BenchHost,
  link: BenchLink,
  repository: string,
  app: string,
): Promise<string> {
  const manifest = await edge.push(ctx.layout, ctx.image.tag, repository, 'bench')
  await edge.waitStatus(repository, manifest, (s) => s.state === 'converted', {
    timeoutMs: 30 * 60_000,
  })
  const image = `${link.registryAddress}/${repository}:bench`
  expectOk('create app', await host.admin('PUT', `/admin/apps/${app}`, { name: app, image }))
  return manifest
}

/**
 * One recorded start: the app deployed from `repository`, started once by `thaw host` (which
 * records the files it reads and uploads the profile), then waited until the edge has re-laid the
 * artifact by the profile and serves its prefetch bundle. Returns the manifest and the bytes the
 * profile says the function read.
 */
export async function recordProfile(
  ctx: ContenderContext,
  edge: BenchEdge,
  host: BenchHost,
  link: BenchLink,
  repository: string,
  app: string,
): Promise<{ manifest: string; bytesRead: number; recordingMs: number }> {
  const manifest = await deploy(ctx, edge, host, link, repository, app)
  ctx.log(`${repository}: recording start`)
  const recording = expectOk('recording start', await host.request(`/${app}/api/hello`))
  await waitProfileUploaded(host, 300_000)
  await edge.waitStatus(repository, manifest, (s) => s.state === 'converted' && !!s.profile, {
    timeoutMs: 30 * 60_000,
  })
  const profile = await edge.profile(repository, manifest, app)
  const bytesRead = profile.entries.reduce(
    (sum, e) => sum + e.ranges.reduce((n, [, length]) => n + length, 0),
    0,
  )
  ctx.log(
    `${repository}: the recording start took ${recording.ttfbMs.toFixed(0)} ms; its profile: ` +
      `${profile.entries.length} files, ${bytesRead} bytes`,
  )
  // THAW_BENCH_PROFILES=DIR keeps each recorded profile (test/bench/bundle-bytes.ts reads one).
  const keep = process.env.THAW_BENCH_PROFILES
  if (keep) {
    await mkdir(keep, { recursive: true })
    const file = join(keep, `${ctx.image.name}-${ctx.link.spec.name}-${app}.profile.json`)
    await writeFile(file, serializeProfile(profile))
  }
  return { manifest, bytesRead, recordingMs: recording.ttfbMs }
}

interface ProfilesAnswer {
  profiles: { reference: string; state: string; error?: string }[]
}

async function profileStates(host: BenchHost): Promise<ProfilesAnswer['profiles']> {
  const answer = expectOk('profiles', await host.admin('GET', '/admin/profiles'))
  return (JSON.parse(answer.body) as ProfilesAnswer).profiles
}

async function waitProfileUploaded(host: BenchHost, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const states = await profileStates(host)
    if (states.some((s) => s.state === 'uploaded')) return
    const failed = states.find((s) => s.state === 'failed')
    if (failed) throw new Error(`recording the profile failed: ${failed.error}`)
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`no profile uploaded within ${timeoutMs} ms`)
}
