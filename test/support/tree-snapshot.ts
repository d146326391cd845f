import { execFileSync } from 'node:child_process'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { FsEntryType } from '../../runtime/format/fs-index.ts'
import type { ImageReader } from '../../runtime/format/reader.ts'

/** What a filesystem shows of one path: enough to say two trees are the same. */
export interface NodeSnapshot {
  type: FsEntryType
  mode: number
  uid: number
  gid: number
  size: number
  /** Nanoseconds since the epoch, as a string (beyond 2^53). */
  mtime: string
  target: string
  dev: string
  xattrs: Record<string, string>
  /** Other paths sharing this inode (hard links), sorted; [] when none. */
  links: string[]
  /** sha-free content comparison: the bytes themselves (trees here are small). */
  content?: Buffer
  children?: string[]
}

export type TreeSnapshot = Map<string, NodeSnapshot>

/** A tree on disk (an unpacked rootfs), keyed by relative path (`""` for the root). */
export function snapshotDisk(root: string, options: { content?: boolean } = {}): TreeSnapshot {
  const xattrs = diskXattrs(root)
  const out: TreeSnapshot = new Map()
  const inodes = new Map<bigint, string[]>()
  const visit = (path: string) => {
    const rel = relative(root, path)
    const st = lstatSync(path, { bigint: true })
    const type: FsEntryType = st.isDirectory()
      ? 'directory'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isCharacterDevice()
          ? 'char'
          : st.isBlockDevice()
            ? 'block'
            : st.isFIFO()
              ? 'fifo'
              : 'file'
    const node: NodeSnapshot = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'file' ? Number(st.size) : 0,
      mtime: st.mtimeNs.toString(),
      target: type === 'symlink' ? readlinkSync(path, 'utf8') : '',
      dev:
        type === 'char' || type === 'block'
          ? `${Number(st.rdev) >> 8}:${Number(st.rdev) & 0xff}`
          : '',
      xattrs: xattrs.get(rel) ?? {},
      links: [],
    }
    if (type === 'file') {
      if (options.content !== false) node.content = readFileSync(path)
      if (st.nlink > 1n) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel])
    }
    out.set(rel, node)
    if (type === 'directory') {
      const names = readdirSync(path).sort()
      node.children = names
      for (const name of names) visit(join(path, name))
    }
  }
  visit(root)
  for (const group of inodes.values())
    for (const p of group) out.get(p)!.links = group.filter((q) => q !== p).sort()
  return out
}

/** The same view, read through the index and the reader (content fetched and verified). */
export async function snapshotReader(
  reader: ImageReader,
  options: { content?: boolean } = {},
): Promise<TreeSnapshot> {
  const out: TreeSnapshot = new Map()
  const inodes = new Map<number, string[]>()
  for (const e of reader.index.entries) {
    const node = reader.lookup(e.path)!
    const snap: NodeSnapshot = {
      type: node.type,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      size: node.size,
      mtime: (BigInt(node.mtime) * 1_000_000_000n + BigInt(node.mtimeNsec)).toString(),
      target: node.linkTarget,
      dev: node.type === 'char' || node.type === 'block' ? `${node.devMajor}:${node.devMinor}` : '',
      xattrs: Object.fromEntries([...node.xattrs].map(([k, v]) => [k, v.toString('hex')])),
      links: [],
    }
    if (node.type === 'file' && options.content !== false)
      snap.content = await reader.read(e.path, 0, node.size)
    if (node.type === 'directory') snap.children = reader.readdir(e.path)
    if (node.nlink > 1 && node.type === 'file')
      inodes.set(node.ino, [...(inodes.get(node.ino) ?? []), e.path])
    out.set(e.path, snap)
  }
  for (const group of inodes.values())
    for (const p of group) out.get(p)!.links = group.filter((q) => q !== p).sort()
  return out
}

/**
 * Differences between two snapshots, one line each (empty when equal). `ignoreMtime` lists paths
 * whose mtime is not comparable (directories created implicitly at unpack time).
 */
export function diffSnapshots(
  expected: TreeSnapshot,
  actual: TreeSnapshot,
  ignoreMtime: (path: string) => boolean = () => false,
): string[] {
  const out: string[] = []
  for (const [path, want] of expected) {
    const got = actual.get(path)
    if (got === undefined) {
      out.push(`missing: ${path}`)
      continue
    }
    for (const key of ['type', 'mode', 'uid', 'gid', 'size', 'mtime', 'target', 'dev'] as const) {
      if (key === 'mtime' && ignoreMtime(path)) continue
      if (want[key] !== got[key])
        out.push(`${key} of ${JSON.stringify(path)}: expected ${want[key]}, got ${got[key]}`)
    }
    if (JSON.stringify(sorted(want.xattrs)) !== JSON.stringify(sorted(got.xattrs)))
      out.push(
        `xattrs of ${JSON.stringify(path)}: expected ${JSON.stringify(want.xattrs)}, got ${JSON.stringify(got.xattrs)}`,
      )
    if (want.links.join('\0') !== got.links.join('\0'))
      out.push(
        `hard links of ${JSON.stringify(path)}: expected ${JSON.stringify(want.links)}, got ${JSON.stringify(got.links)}`,
      )
    if (want.content && got.content && !want.content.equals(got.content))
      out.push(`content of ${JSON.stringify(path)} differs`)
    if (want.children && JSON.stringify(want.children) !== JSON.stringify(got.children))
      out.push(`listing of ${JSON.stringify(path)} differs`)
  }
  for (const path of actual.keys()) if (!expected.has(path)) out.push(`unexpected: ${path}`)
  return out
}

function sorted(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1))
}

/** All xattrs under `root` by relative path, values in hex (getfattr -R, not following links). */
function diskXattrs(root: string): Map<string, Record<string, string>> {
  const text = execFileSync(
    'getfattr',
    ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root],
    { maxBuffer: 1 << 28 },
  ).toString('latin1')
  const out = new Map<string, Record<string, string>>()
  let current: Record<string, string> | undefined
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = Buffer.from(unescapeOctal(line.slice(8)), 'latin1').toString('utf8')
      out.set(relative(root, abs), (current = {}))
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=')
      const value = line.slice(eq + 1)
      current[line.slice(0, eq)] = value.startsWith('0x') ? value.slice(2) : ''
    }
  }
  return out
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
}
