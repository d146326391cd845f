import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

/** A small seedable PRNG (mulberry32): the same seed builds the same tree. */
export function createRng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!
  const bytes = (n: number) => {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256)
    return out
  }
  return { next, int, pick, bytes, chance: (p: number) => next() < p }
}
export type Rng = ReturnType<typeof createRng>

const WORDS = [
  'bin',
  'lib',
  'etc',
  'data',
  'cfg',
  'x',
  'node_modules',
  'site-packages',
  'a b',
  '-dash',
  '.hidden',
  'UPPER',
]
const UNICODE = ['ünïcødé', '日本語', 'emoji-😀', 'ελληνικά', 'кириллица', 'mixed-ß-ø']

function randomName(rng: Rng): string {
  const r = rng.next()
  if (r < 0.08) return `${rng.pick(UNICODE)}-${rng.int(0, 999)}`
  // long names: over 100 bytes (ustar name field), under 255 (NAME_MAX)
  if (r < 0.14) return `long-${'n'.repeat(rng.int(100, 230))}`
  return `${rng.pick(WORDS)}-${rng.int(0, 99_999)}`
}

export interface TreeOptions {
  entries: number
  /** Files of this size or more span several frames when converted with small splitBytes. */
  largeBytes: number
}

/**
 * Builds a random tree under `root` on disk: deep paths (some over 255 and 1000 bytes), empty,
 * small and large files, symlinks (relative, absolute, dangling), hard links, fifos, xattrs
 * (`user.*`, via setfattr), odd modes (setuid, setgid, sticky, read-only), owners and mtimes.
 */
export function generateTree(root: string, rng: Rng, options: TreeOptions): void {
  mkdirSync(root, { recursive: true })
  const dirs = [root]
  const files: string[] = []
  const xattrs: string[] = []
  for (let i = 0; i < options.entries; i++) {
    const parent = rng.pick(dirs)
    const path = join(parent, randomName(rng))
    if (existsSync(path)) continue
    const r = rng.next()
    if (r < 0.2) {
      mkdirSync(path)
      dirs.push(path)
      if (rng.chance(0.1)) chmodSync(path, rng.pick([0o1777, 0o2755, 0o700]))
    } else if (r < 0.25) {
      // a deep chain of long directory names
      let deep = path
      for (let d = 0, depth = rng.int(3, 9); d < depth; d++)
        deep = join(deep, `deep-${d}-${'d'.repeat(rng.int(20, 110))}`)
      mkdirSync(deep, { recursive: true })
      dirs.push(deep)
      writeFileSync(join(deep, 'leaf'), rng.bytes(rng.int(0, 3000)))
    } else if (r < 0.6) {
      const size = rng.chance(0.15)
        ? 0
        : rng.chance(0.04)
          ? rng.int(options.largeBytes, options.largeBytes * 3)
          : rng.int(1, 20_000)
      writeFileSync(path, compressible(rng, size))
      files.push(path)
      chmodSync(path, rng.pick([0o644, 0o644, 0o755, 0o600, 0o444, 0o4755, 0o2711]))
    } else if (r < 0.72) {
      const target = rng.pick([
        '../etc/passwd',
        '/usr/bin/env',
        'dangling',
        '.',
        '/',
        `../${rng.pick(WORDS)}`,
      ])
      symlinkSync(target, path)
    } else if (r < 0.8 && files.length > 0) {
      linkSync(rng.pick(files), path)
    } else if (r < 0.83) {
      execFileSync('mkfifo', [path])
    } else {
      writeFileSync(path, compressible(rng, rng.int(0, 500)))
      files.push(path)
    }
    // user.* xattrs exist only on regular files and directories (xattr(7))
    const kind = lstatSync(path)
    if (rng.chance(0.15) && (kind.isFile() || kind.isDirectory())) xattrs.push(path)
    if (rng.chance(0.2))
      lchownSync(path, rng.pick([0, 1000, 65534, 123_456]), rng.pick([0, 100, 65534, 3_000_000]))
    if (!lstatSync(path).isSymbolicLink() || rng.chance(0.5)) {
      lutimesSync(
        path,
        1_600_000_000,
        rng.int(1_000_000_000, 1_700_000_000) + rng.pick([0, 0.5, 0.25]),
      )
    }
  }
  setXattrs(xattrs, rng)
}

/**
 * Changes a tree the way a later image layer would: removes files and whole directories
 * (whiteouts), rewrites files, replaces a file by a directory and a directory by a file, changes
 * directory metadata, and adds new entries.
 */
export function mutateTree(root: string, rng: Rng, options: TreeOptions): void {
  const all = walk(root)
  for (const path of all) {
    if (!existsSync(path) && !isLink(path)) continue
    const st = lstatSync(path)
    const r = rng.next()
    if (r < 0.08) rmSync(path, { recursive: true, force: true })
    else if (r < 0.12 && st.isFile()) writeFileSync(path, compressible(rng, rng.int(0, 30_000)))
    else if (r < 0.13 && st.isFile()) {
      rmSync(path)
      mkdirSync(path)
      writeFileSync(join(path, 'now-a-dir'), 'x')
    } else if (r < 0.14 && st.isDirectory()) {
      rmSync(path, { recursive: true })
      writeFileSync(path, 'was a directory')
    } else if (r < 0.17 && st.isDirectory()) {
      chmodSync(path, 0o750)
      lutimesSync(path, 1_600_000_000, 1_650_000_000)
    }
  }
  generateTree(join(root, `added-${rng.int(0, 9999)}`), rng, {
    ...options,
    entries: Math.ceil(options.entries / 3),
  })
}

/** Text-like content (compressible, as real files are), deterministic for the seed. */
function compressible(rng: Rng, size: number): Buffer {
  const words = ['alpha ', 'beta ', 'gamma\n', 'delta ', '{"k":1} ', 'function f() {}\n']
  const out = Buffer.allocUnsafe(size)
  let pos = 0
  while (pos < size)
    pos += out.write(rng.chance(0.1) ? rng.bytes(8).toString('hex') : rng.pick(words), pos)
  return out
}

function setXattrs(paths: string[], rng: Rng): void {
  if (paths.length === 0) return
  // One setfattr --restore for all files (getfattr dump format), instead of a process per xattr.
  const dump = paths
    .map((p) => {
      const lines = [`# file: ${p}`, `user.thaw.test="${rng.int(0, 1e6)}"`]
      if (rng.chance(0.5)) lines.push(`user.binary=0x${rng.bytes(rng.int(1, 40)).toString('hex')}`)
      if (rng.chance(0.2)) lines.push(`user.empty=""`)
      return `${lines.join('\n')}\n`
    })
    .join('\n')
  execFileSync('setfattr', ['--restore=-'], { input: dump })
}

function walk(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    out.push(path)
    if (lstatSync(path).isDirectory()) out.push(...walk(path))
  }
  return out
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
