import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  parseConversionStatus,
  thawPaths,
  type ConversionStatus,
} from '../../../../runtime/artifact/thaw-api.ts'
import { parseProfile, type Profile } from '../../../../runtime/profile/profile.ts'
import { runCommand } from '../../../../host/os/run-command.ts'
import { startChild, type BenchChild } from '../child.ts'
import { freePort } from '../ports.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
/** bin/thaw of this checkout, or THAW_BENCH_BIN (e.g. another checkout's bin/thaw). */
export const THAW_BIN = process.env.THAW_BENCH_BIN ?? resolve(HERE, '../../../../bin/thaw')

/** `thaw edge` in origin mode (its own store), on the host's loopback. */
export interface BenchEdge {
  readonly address: string
  readonly port: number
  readonly child: BenchChild
  /** Pushes `<layout>:<tag>` with skopeo; resolves with the manifest digest the edge stored. */
  push(layout: string, tag: string, repository: string, targetTag: string): Promise<string>
  /** Waits until the edge's conversion status of `manifest` satisfies `done` (or fails). */
  waitStatus(
    repository: string,
    manifest: string,
    done: (s: ConversionStatus) => boolean,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<ConversionStatus>
  /**
   * Bytes the function read at startup: the sum of the ranges in the edge's merged profile of
   * `workload` (the host names a start by its app; '' is the unnamed default).
   */
  profileBytesRead(repository: string, manifest: string, workload?: string): Promise<number>
  /** The edge's merged profile of `workload` (as it serves it). */
  profile(repository: string, manifest: string, workload?: string): Promise<Profile>
  /** Sums of thaw_edge_bytes_served_total and thaw_edge_requests_total (Prometheus text). */
  counters(): Promise<{ bytes: number; requests: number }>
  close(): Promise<void>
}

export async function startEdge(storeDir: string): Promise<BenchEdge> {
  await mkdir(storeDir, { recursive: true })
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  // debootstrap trees carry /dev nodes; the edge skips images with device files unless allowed.
  const config = `${storeDir}.edge.json`
  await writeFile(config, JSON.stringify({ conversion: { limits: { allowDevices: true } } }))
  const child = startChild(
    THAW_BIN,
    [
      'edge',
      '--config',
      config,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--store',
      storeDir,
    ],
    undefined,
    join(dirname(storeDir), 'edge.log'),
  ) // its output, kept whole beside its store
  try {
    await child.waitFor(/listening/, 60_000)
  } catch (err) {
    await child.stop()
    throw err
  }
  const base = `http://${address}`
  const merged = async (
    repository: string,
    manifest: string,
    workload: string,
  ): Promise<Profile> => {
    const res = await fetch(`${base}${thawPaths.profiles(repository, manifest as never, workload)}`)
    if (!res.ok)
      throw new Error(
        `no profile of ${JSON.stringify(workload)} for ${repository}@${manifest} (HTTP ${res.status})`,
      )
    return parseProfile(new Uint8Array(await res.arrayBuffer()))
  }
  const edge: BenchEdge = {
    address,
    port,
    child,
    async push(layout, tag, repository, targetTag) {
      await runCommand(
        'skopeo',
        [
          'copy',
          '--dest-tls-verify=false',
          `oci:${layout}:${tag}`,
          `docker://${address}/${repository}:${targetTag}`,
        ],
        { timeoutMs: 30 * 60_000 },
      )
      const head = await fetch(`${base}/v2/${repository}/manifests/${targetTag}`, {
        method: 'HEAD',
        headers: {
          accept:
            'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      })
      const digest = head.headers.get('docker-content-digest')
      if (!head.ok || !digest)
        throw new Error(
          `the edge has no ${repository}:${targetTag} after the push (HTTP ${head.status})`,
        )
      return digest
    },
    async waitStatus(repository, manifest, done, { timeoutMs, signal }) {
      const deadline = Date.now() + timeoutMs
      let last: ConversionStatus | string = 'no answer'
      while (Date.now() < deadline) {
        signal?.throwIfAborted()
        const res = await fetch(`${base}${thawPaths.status(repository, manifest as never)}`).catch(
          (err: Error) => err,
        )
        if (res instanceof Response && res.ok) {
          last = parseConversionStatus(await res.json())
          if (done(last)) return last
          if (last.state === 'failed' || last.state === 'skipped')
            throw new Error(
              `conversion of ${repository}@${manifest} ${last.state}: ${last.code} ${last.reason}`,
            )
        } else {
          last = res instanceof Response ? `HTTP ${res.status}` : res.message
        }
        await new Promise((r) => setTimeout(r, 250))
      }
      throw new Error(
        `${repository}@${manifest}: status not reached in ${timeoutMs} ms (last: ${JSON.stringify(last)})`,
      )
    },
    profile: (repository, manifest, workload = '') => merged(repository, manifest, workload),
    async profileBytesRead(repository, manifest, workload = '') {
      const profile = await merged(repository, manifest, workload)
      return profile.entries.reduce(
        (sum, e) => sum + e.ranges.reduce((n, [, length]) => n + length, 0),
        0,
      )
    },
    async counters() {
      const text = await (await fetch(`${base}/metrics`)).text()
      return {
        bytes: sumMetric(text, 'thaw_edge_bytes_served_total'),
        requests: sumMetric(text, 'thaw_edge_requests_total'),
      }
    },
    close: () => child.stop(),
  }
  return edge
}

/** Sum of every sample of `name` (all label sets) in Prometheus' text format. */
export function sumMetric(text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== '{' && rest[0] !== ' ') continue
    const value = Number(line.trim().split(/\s+/).at(-1))
    if (Number.isFinite(value)) sum += value
  }
  return sum
}
