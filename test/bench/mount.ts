/**
 * Reads through a lazy mount (`thaw mount`, FUSE) versus the same tree on local disk, in one run:
 * sequential read of a 64 MiB file, 2000 random 4 KiB reads of it, a stat storm (lstat of every
 * path under /data/tree and /usr, as module resolution does), and `node -e 0` started chrooted
 * into the tree. Each cold (empty frame cache, new mount; local: page cache dropped), cached
 * (frame cache full, new mount, so the kernel's page cache is cold) and warm (same mount again).
 * Also the requests and bytes a cold `node -e 0` fetched through the mount (no profile).
 *
 *   node --import tsx test/bench/mount.ts [runs=5]
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot. Drops the page cache
 * (/proc/sys/vm/drop_caches) before each cold local measurement. Prints medians of `runs`
 * (cold ones: one run each, on a fresh mount); asserts nothing.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildNodeBase } from '../../host/build/node-base.ts'
import { readFileSync } from 'node:fs'
import { parseProfile } from '../../runtime/profile/profile.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { buildBundle, pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'

const runs = Number(process.argv[2] ?? 5)
const THAW = join(import.meta.dirname, '..', '..', 'bin', 'thaw')
const work = await mkdtemp(join(tmpdir(), 'thaw-bench-mount-'))
const cleanups: (() => void)[] = []

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
const timed = (cmd: string, args: string[]) => {
  const t = performance.now()
  sh(cmd, args)
  return performance.now() - t
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const dropCaches = () => writeFileSync('/proc/sys/vm/drop_caches', '3')

// Measured inside a child node (its own start excluded): random preads and an lstat walk.
const RANDOM = `const fs=require('fs');const fd=fs.openSync(process.argv[1]);const size=fs.fstatSync(fd).size;
let s=1;const b=Buffer.alloc(4096);const t=performance.now();
for(let i=0;i<2000;i++){s=(s*48271)%2147483647;fs.readSync(fd,b,0,4096,(s%Math.floor(size/4096))*4096)}
console.log(performance.now()-t)`
const STAT = `const fs=require('fs'),p=require('path');let n=0;const t=performance.now();
const walk=d=>{for(const e of fs.readdirSync(d)){const f=p.join(d,e);n++;if(fs.lstatSync(f).isDirectory())walk(f)}};
for(const r of process.argv.slice(1))walk(r);console.log(performance.now()-t)`

const probes = {
  'sequential 64 MiB (ms)': (root: string) => timed('dd', [`if=${root}/data/big.bin`, 'of=/dev/null', 'bs=1M']),
  'random 4 KiB x2000 (ms)': (root: string) => Number(sh(process.execPath, ['-e', RANDOM, `${root}/data/big.bin`])),
  'stat storm (ms)': (root: string) => Number(sh(process.execPath, ['-e', STAT, `${root}/data/tree`, `${root}/usr`])),
  'node -e 0 chrooted (ms)': (root: string) => timed('chroot', [root, '/usr/bin/node', '-e', '0']),
}

async function image(): Promise<{ reference: string; local: string; registry: string; pushed: PushedStreamingImage }> {
  const base = await buildNodeBase({ outDir: '/var/tmp/thaw-cache/node-base-test', gzip: false })
  const layout = join(work, 'layout')
  const bundle = join(work, 'bundle')
  sh('umoci', ['init', '--layout', layout])
  sh('umoci', ['new', '--image', `${layout}:t`])
  sh('umoci', ['unpack', '--image', `${layout}:t`, bundle])
  const local = join(bundle, 'rootfs')
  sh('cp', ['-a', `${base.rootfs}/.`, local])
  mkdirSync(join(local, 'data', 'tree'), { recursive: true })
  writeFileSync(join(local, 'data', 'big.bin'), randomBytes(64 << 20))
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(local, 'data', 'tree', `d${d}`))
    for (let f = 0; f < 50; f++) writeFileSync(join(local, 'data', 'tree', `d${d}`, `f${f}.js`), randomBytes(1024 + ((d * f) % 7000)).toString('base64'))
  }
  sh('umoci', ['repack', '--image', `${layout}:t`, bundle])
  const registry = await startRegistry()
  const pushed = await pushStreamingImage({ registry, repository: 'bench/mount', layout, tag: 't', workDir: work })
  return { reference: pushed.reference, local, registry, pushed }
}

async function startRegistry(): Promise<string> {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  const config = join(work, 'registry.yml')
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`)
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' })
  cleanups.push(() => child.kill())
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)) return `http://127.0.0.1:${port}`
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('docker-registry did not start')
}

/** `thaw mount` in a child process; stop() returns its "fetched:" report. */
async function mount(reference: string, cache: string, args = ['--no-replay']) {
  const dir = join(work, `mnt-${Math.random().toString(36).slice(2)}`)
  mkdirSync(dir)
  const child = spawn(THAW, ['mount', reference, dir, '--cache', cache, '--no-background', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c))
  const unmount = () => spawnSync('fusermount', ['-u', '-z', dir])
  cleanups.push(unmount)
  while (!/^mounted /m.test(out)) {
    if (child.exitCode !== null) throw new Error(`thaw mount exited: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    dir,
    async stop(): Promise<Record<string, number>> {
      child.kill('SIGTERM')
      await once(child, 'exit')
      unmount()
      return JSON.parse(out.match(/^fetched: (.*)$/m)?.[1] ?? '{}') as Record<string, number>
    },
  }
}

/**
 * A cold `node -e 0` recorded (`--record`), then the same cold start with the bundle built from
 * that profile, served by a proxy in front of the registry: requests and bytes at the proxy.
 */
async function withProfile(reference: string, registry: string, pushed: PushedStreamingImage): Promise<void> {
  const proxy = await startFaultProxy(registry, { closeAfterAll: false })
  try {
    const profilePath = join(work, 'profile.json')
    const start = async (cache: string, args: string[]) => {
      proxy.requests.length = 0
      proxy.bytes = 0
      const m = await mount(reference, cache, ['--edge', proxy.url, ...args])
      // Asynchronously: the proxy serving the mount's requests runs in this process.
      const t = performance.now()
      const child = spawn('chroot', [m.dir, '/usr/bin/node', '-e', '0'], { stdio: 'ignore' })
      const [code] = (await once(child, 'exit')) as [number]
      if (code !== 0) throw new Error(`node in the mount exited with ${code}`)
      const ms = performance.now() - t
      await m.stop()
      const ranges = proxy.requests.filter((r) => r.includes(' bytes=')).length
      const bundles = proxy.requests.filter((r) => r.includes('/_thaw/bundle/')).length
      return `${ms.toFixed(1)} ms, ${ranges} range requests, ${bundles} bundle request(s), ${proxy.bytes} body bytes at the edge`
    }
    const plain = await start(join(work, 'cache-rec'), ['--record', profilePath])
    const profile = parseProfile(readFileSync(profilePath))
    const read = profile.entries.reduce((n, e) => n + e.ranges.reduce((m, [, length]) => m + length, 0), 0)
    proxy.bundle = await buildBundle(pushed, profile.entries.map((e) => e.path))
    const replayed = await start(join(work, 'cache-replay'), [])
    console.log(`profile: ${profile.entries.length} files, ${read} bytes read; bundle ${proxy.bundle.length} bytes`)
    console.log(`cold node -e 0, no profile:   ${plain}`)
    console.log(`cold node -e 0, with profile: ${replayed}`)
  } finally {
    await proxy.close()
  }
}

try {
  const { reference, local, registry, pushed } = await image()
  const rows: string[][] = [['probe', 'local cold', 'mount cold', 'local warm', 'mount cached', 'mount warm']]
  let nodeFetch: Record<string, number> = {}
  for (const [name, probe] of Object.entries(probes)) {
    dropCaches()
    const localCold = probe(local)
    const localWarm = median(Array.from({ length: runs }, () => probe(local)))
    const cache = join(work, `cache-${rows.length}`)
    const cold = await mount(reference, cache)
    const mountCold = probe(cold.dir)
    const report = await cold.stop()
    if (name.startsWith('node')) nodeFetch = report
    // Everything the probe reads is now in the frame cache; a new mount starts with a cold
    // kernel page cache, so this measures the frame cache, then the warm mount the page cache.
    const again = await mount(reference, cache)
    const mountCached = probe(again.dir)
    const mountWarm = median(Array.from({ length: runs }, () => probe(again.dir)))
    await again.stop()
    rows.push([name, ...[localCold, mountCold, localWarm, mountCached, mountWarm].map((x) => x.toFixed(1))])
  }
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(13))).join(''))
  console.log(`cold node -e 0 through the mount fetched (no profile): ${JSON.stringify(nodeFetch)}`)
  await withProfile(reference, registry, pushed)
} finally {
  for (const c of cleanups.reverse()) c()
  await rm(work, { recursive: true, force: true })
}
