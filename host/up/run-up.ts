import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseConversionStatus, thawPaths, type ConversionStatus } from '../../runtime/artifact/thaw-api.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { ThawError } from '../../runtime/errors.ts'
import { createMounts } from '../cli/host-mounts.ts'
import { buildAndPushBase, deployApp, deployReporter, readAppSource, type DeployResult } from '../deploy/index.ts'
import { initProject } from '../init/init-project.ts'
import { jsonHostLogger } from '../log/host-logger.ts'
import { startHost, type RunningHost } from '../server/start-host.ts'
import { coldCall, type ColdCall } from './cold-call.ts'
import { startEdgeChild, type EdgeChild } from './edge-child.ts'
import { edgeTraffic, logOffset, type EdgeTraffic } from './edge-requests.ts'

export interface UpOptions {
  /** Everything lives here: edge store, host state, the sample app, logs. */
  stateDir: string
  port: number
  edgePort: number
  pool: number
  template: string
  /** Progress lines for a person. */
  say: (line: string) => void
  signal?: AbortSignal
}

export interface ColdRun extends ColdCall {
  /** What the edge served for the app's repository from the request to the first byte. */
  traffic: EdgeTraffic
}

export interface Up {
  edge: EdgeChild
  host: RunningHost
  deployed: DeployResult
  /** The function's URL, by host name (`<app>.localhost`). */
  url: string
  /** The first cold start (recording) and one after the host's cache was cleared (replaying). */
  record: ColdRun
  replay: ColdRun
  /** Idempotent: the host (nodes, mounts), then the edge. */
  close(): Promise<void>
}

/**
 * `thaw up`: thaw's main job on its embedded defaults, on one machine. An edge in origin mode
 * with its own store (a child process), a host on lazy mounts, the node base image and the
 * sample app from the templates built and deployed as a custom image; then two cold starts: the
 * first records what the function reads, the second (after the host's cache is cleared and the
 * page cache dropped) replays the edge's prefetch bundle.
 */
export async function runUp(o: UpOptions): Promise<Up> {
  const stateDir = resolve(o.stateDir)
  await mkdir(stateDir, { recursive: true })
  const edgeLog = join(stateDir, 'edge.log')
  await writeFile(edgeLog, '', { flag: 'a' })
  o.say(`edge: origin mode, store ${join(stateDir, 'edge')} (log ${edgeLog})`)
  const edge = await startEdgeChild({ port: o.edgePort, store: join(stateDir, 'edge'), logFile: edgeLog, signal: o.signal })
  let host: RunningHost | undefined
  // The host's log stays open while it runs: a function's log line is one write, not an open,
  // a write and a close (appendFileSync), on every request. A line after close() appends.
  const hostLog = join(stateDir, 'host.log')
  let hostLogFd: number | undefined = openSync(hostLog, 'a')
  const writeHostLog = (line: string) =>
    hostLogFd === undefined ? appendFileSync(hostLog, line) : void writeSync(hostLogFd, line)
  const close = async () => {
    await host?.close()
    if (hostLogFd !== undefined) closeSync(hostLogFd)
    hostLogFd = undefined
    await edge.stop()
  }
  try {
    const hostDir = join(stateDir, 'host')
    const logger = jsonHostLogger(writeHostLog)
    // Not kept past the process (thaw host keeps them for its next start): a `thaw up` ended by
    // a second Ctrl-C would otherwise leave mounts that hang whoever reads them (rm -rf .thaw)
    // until another `thaw up` on this state serves them again.
    const mounts = await createMounts({ dir: join(hostDir, 'mounts'), edges: [edge.url], logger, keep: false })
    host = await startHost({
      stateDir: hostDir,
      port: o.port,
      warm: o.pool,
      mounts,
      edgeFor: () => edge.url,
      logger,
    })
    o.say(`host: ${host.url}, ${o.pool} warm node(s) (log ${hostLog})`)

    const appDir = await sampleApp(stateDir, o.template)
    // The base the template's kind deploys onto (deploy-app.ts DEFAULT_BASES).
    if ((await readAppSource(appDir)).kind === 'custom-handler') {
      o.say('base image: thaw/debian (Debian bookworm slim with nodejs and python3, by debootstrap: ' +
        'minutes the first time, then cached under /var/tmp/thaw-cache)')
      const onProgress = (line: string) => o.say(`  ${line}`)
      await buildAndPushBase({ kind: 'debian', registry: edge.url, signal: o.signal, onProgress })
    } else {
      o.say('base image: thaw/node (this machine\'s node, cached under /var/tmp/thaw-cache)')
      await buildAndPushBase({ kind: 'node', registry: edge.url, signal: o.signal })
    }
    o.say(`deploy: ${appDir}`)
    const deployed = await deployApp({
      appDir,
      registry: edge.url,
      host: { url: host.url, masterKey: host.masterKey },
      onEvent: deployReporter(process.stderr),
      signal: o.signal,
    })
    const functionUrl = `${host.url}/${deployed.name}/api/hello?name=thaw`

    // The deploy's health gate started a node of the app: stop it, so the first call is cold.
    // A state directory kept from an earlier run holds frames of this image: start from none.
    await admin(host, `/admin/apps/${deployed.name}/drain`)
    await admin(host, '/admin/cache/clear')
    await dropPageCache()
    o.say('cold start 1: nothing of the image on this machine; recording what the function reads')
    const record = await coldRun(functionUrl, edgeLog, deployed.repository, o.signal)
    const profile = await profileAtEdge(edge.url, deployed, host, o.signal)
    o.say(`profile: uploaded; the edge re-laid the image out (generation ${profile.generation})`)

    await admin(host, `/admin/apps/${deployed.name}/drain`)
    await admin(host, '/admin/cache/clear')
    await dropPageCache()
    o.say('cold start 2: host cache cleared, page cache dropped; replaying the prefetch bundle')
    const replay = await coldRun(functionUrl, edgeLog, deployed.repository, o.signal)
    const url = `${host.url.replace('127.0.0.1', `${deployed.name}.localhost`)}/api/hello?name=you`
    return { edge, host, deployed, url, record, replay, close }
  } catch (err) {
    await close()
    throw err
  }
}

/** The sample app, made once from the template (kept between runs, so a redeploy is a no-op). */
async function sampleApp(stateDir: string, template: string): Promise<string> {
  const dir = join(stateDir, 'sample')
  const made = await access(join(dir, 'host.json')).then(() => true, () => false)
  if (!made) await initProject({ dir, template, name: 'sample' })
  return dir
}

async function coldRun(url: string, edgeLog: string, repository: string, signal?: AbortSignal): Promise<ColdRun> {
  const from = await logOffset(edgeLog)
  const call = await coldCall(url, signal)
  if (call.status !== 200) {
    throw new ThawError('UP_FAILED', `the sample function answered ${call.status}: ${call.body.slice(0, 500)}`, { fault: 'system' })
  }
  if (!call.timings) throw new ThawError('UP_FAILED', 'the first call was not a cold start (is the app already running?)', { fault: 'system' })
  await sleep(200) // the edge logs a request when its response has been sent
  return { ...call, traffic: await edgeTraffic(edgeLog, repository, from) }
}

/** Waits until the host uploaded the profile and the edge laid the image out by it. */
async function profileAtEdge(edgeUrl: string, deployed: DeployResult, host: RunningHost, signal?: AbortSignal): Promise<ConversionStatus> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    // One state per workload: the deploy's health gate started the app (workload "sample", its
    // recording dropped when the node was drained), the cold call ran its function ("sample/hello").
    const states = host.profiles.states().filter((s) => s.manifest === deployed.digest)
    const failed = states.find((s) => s.state === 'failed')
    if (failed) throw new ThawError('UP_FAILED', `recording the profile failed: ${failed.error}`, { fault: 'system' })
    if (states.some((s) => s.state === 'uploaded')) {
      const status = await conversionStatus(edgeUrl, deployed.repository, deployed.digest, signal)
      if (status?.profile && status.state === 'converted') return status
    }
    await sleep(200, undefined, { signal })
  }
  throw new ThawError('UP_FAILED', 'the edge did not re-lay the image out by its profile within 60 s', { fault: 'system' })
}

async function conversionStatus(edgeUrl: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<ConversionStatus | undefined> {
  const res = await fetch(`${edgeUrl}${thawPaths.status(repository, digest)}`, { signal })
  return res.ok ? parseConversionStatus(await res.json()) : undefined
}

async function admin(host: RunningHost, path: string): Promise<void> {
  const res = await fetch(`${host.url}${path}`, { method: 'POST', headers: { 'x-functions-key': host.masterKey } })
  if (!res.ok) throw new ThawError('UP_FAILED', `POST ${path} answered ${res.status}: ${await res.text()}`, { fault: 'system' })
}

/** Root only; elsewhere the second start may find the image's bytes in the page cache. */
async function dropPageCache(): Promise<void> {
  await writeFile('/proc/sys/vm/drop_caches', '3\n').catch(() => {})
}
