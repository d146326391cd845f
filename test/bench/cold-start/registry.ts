import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCommand } from '../../../host/os/run-command.ts'
import { freePort } from './ports.ts'

/**
 * The benchmark's registry: CNCF distribution (Debian's docker-registry 2.8) on 127.0.0.1, with
 * storage kept under the cache directory so pushed images survive between runs. Its access log
 * (one line per request, with the response body size) is how requests and bytes are counted.
 */
export interface BenchRegistry {
  /** host:port on the host's loopback. */
  readonly address: string
  readonly port: number
  /** Requests and response body bytes served so far. */
  counters(): Promise<{ requests: number; bytes: number }>
  /** Is `<repository>:<tag>` there (an OCI image manifest)? */
  hasManifest(repository: string, tag: string): Promise<boolean>
  /** The parsed image manifest of `<repository>:<tag>`. */
  manifest(repository: string, tag: string): Promise<unknown>
  /** Pushes `<layout>:<tag>` as `<repository>:<targetTag>` unless it is there already. */
  push(layout: string, tag: string, repository: string, targetTag: string): Promise<boolean>
  close(): Promise<void>
}

// Combined log format: `… "GET /v2/… HTTP/1.1" 200 1234 "-" "containerd/1.6"`.
const ACCESS_LINE = /"(?:GET|HEAD|PUT|POST|PATCH|DELETE) \S+ HTTP\/[\d.]+" \d{3} (\d+|-)/g

export async function startRegistry(cacheDir: string, runDir: string): Promise<BenchRegistry> {
  const storage = join(cacheDir, 'bench-registry')
  await mkdir(storage, { recursive: true })
  const port = await freePort()
  const config = join(runDir, 'registry.yml')
  const logPath = join(runDir, 'registry.log')
  await writeFile(config, registryConfig(storage, port))
  const log = createWriteStream(logPath)
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.pipe(log)
  child.stderr!.pipe(log)
  const address = `127.0.0.1:${port}`
  await waitUntilUp(`http://${address}/v2/`, child)
  const manifestRequest = (repository: string, tag: string, method: 'HEAD' | 'GET') =>
    fetch(`http://${address}/v2/${repository}/manifests/${tag}`, {
      method,
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  const hasManifest = async (repository: string, tag: string) =>
    (await manifestRequest(repository, tag, 'HEAD')).ok
  let closing: Promise<void> | undefined
  return {
    address,
    port,
    async counters() {
      // the log is written by the registry as it answers; a short settle lets the last line land
      await new Promise((r) => setTimeout(r, 50))
      const text = await readFile(logPath, 'utf8')
      let requests = 0
      let bytes = 0
      for (const m of text.matchAll(ACCESS_LINE)) {
        requests++
        if (m[1] !== '-') bytes += Number(m[1])
      }
      return { requests, bytes }
    },
    hasManifest,
    async manifest(repository, tag) {
      const res = await manifestRequest(repository, tag, 'GET')
      if (!res.ok) throw new Error(`${repository}:${tag}: registry answered ${res.status}`)
      return res.json()
    },
    async push(layout, tag, repository, targetTag) {
      if (await hasManifest(repository, targetTag)) return false
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
      return true
    },
    close() {
      closing ??= stop(child).then(() => void log.end())
      return closing
    },
  }
}

function registryConfig(storage: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n')
}

async function waitUntilUp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`)
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  await stop(child)
  throw new Error(`docker-registry did not answer at ${url} within 10 s`)
}

/** SIGTERM by PID, SIGKILL after 5 s. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}
