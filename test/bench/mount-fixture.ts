/**
 * What the mount benchmarks share (mount.ts, record-cost.ts): the bench image (the node base plus
 * a 64 MiB random file and a 2000-file tree) pushed as a streaming image to a docker-registry on
 * a free port, `thaw mount` in a child process, and the probes that read through a root.
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { buildNodeBase } from '../../host/build/node-base.ts'
import { pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'

export const THAW = join(import.meta.dirname, '..', '..', 'bin', 'thaw')

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
export const timed = (cmd: string, args: string[]) => {
  const t = performance.now()
  sh(cmd, args)
  return performance.now() - t
}
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
export const dropCaches = () => writeFileSync('/proc/sys/vm/drop_caches', '3')

// Measured inside a child node (its own start excluded): random preads and an lstat walk.
const RANDOM = `const fs=require('fs');const fd=fs.openSync(process.argv[1]);const size=fs.fstatSync(fd).size;
let s=1;const b=Buffer.alloc(4096);const t=performance.now();
for(let i=0;i<2000;i++){s=(s*48271)%2147483647;fs.readSync(fd,b,0,4096,(s%Math.floor(size/4096))*4096)}
console.log(performance.now()-t)`
const STAT = `const fs=require('fs'),p=require('path');let n=0;const t=performance.now();
const walk=d=>{for(const e of fs.readdirSync(d)){const f=p.join(d,e);n++;if(fs.lstatSync(f).isDirectory())walk(f)}};
for(const r of process.argv.slice(1))walk(r);console.log(performance.now()-t)`

/** Each takes a root (the mount or the local tree) and returns milliseconds. */
export const probes: Record<string, (root: string) => number> = {
  'sequential 64 MiB (ms)': (root) => timed('dd', [`if=${root}/data/big.bin`, 'of=/dev/null', 'bs=1M']),
  'random 4 KiB x2000 (ms)': (root) => Number(sh(process.execPath, ['-e', RANDOM, `${root}/data/big.bin`])),
  'stat storm (ms)': (root) => Number(sh(process.execPath, ['-e', STAT, `${root}/data/tree`, `${root}/usr`])),
  'node -e 0 chrooted (ms)': (root) => timed('chroot', [root, '/usr/bin/node', '-e', '0']),
}

export interface BenchImage {
  reference: string
  /** The same tree on local disk. */
  local: string
  registry: string
  pushed: PushedStreamingImage
}

/** A bench run's scratch directory and the cleanups to run at its end (mounts, registry). */
export interface BenchContext {
  work: string
  cleanups: (() => void)[]
}

export async function benchImage(ctx: BenchContext): Promise<BenchImage> {
  const { work } = ctx
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
  const registry = await startRegistry(ctx)
  const pushed = await pushStreamingImage({ registry, repository: 'bench/mount', layout, tag: 't', workDir: work })
  return { reference: pushed.reference, local, registry, pushed }
}

async function startRegistry({ work, cleanups }: BenchContext): Promise<string> {
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

export interface BenchMount {
  dir: string
  /** Stops `thaw mount` (SIGTERM), unmounts; returns its "fetched:" report. */
  stop(): Promise<Record<string, number>>
}

/** `thaw mount` in a child process, without background fetch; resolves once it says "mounted". */
export async function thawMount(
  { work, cleanups }: BenchContext,
  reference: string,
  cache: string,
  args = ['--no-replay'],
  /** Another checkout's bin/thaw (mount-ab.ts compares two). */
  bin = THAW,
): Promise<BenchMount> {
  const dir = join(work, `mnt-${Math.random().toString(36).slice(2)}`)
  mkdirSync(dir)
  const child = spawn(bin, ['mount', reference, dir, '--cache', cache, '--no-background', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c))
  const unmount = () => spawnSync('umount', ['-l', dir])
  cleanups.push(unmount)
  while (!/^mounted /m.test(out)) {
    if (child.exitCode !== null) throw new Error(`thaw mount exited: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    dir,
    async stop() {
      child.kill('SIGTERM')
      await once(child, 'exit')
      unmount()
      return JSON.parse(out.match(/^fetched: (.*)$/m)?.[1] ?? '{}') as Record<string, number>
    },
  }
}
