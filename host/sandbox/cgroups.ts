import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Where a node's cgroups are, and the counters thaw reads from them. runc resolves a relative
 * `cgroupsPath` against the cgroup of the process that runs it (libcontainer/cgroups/fs/paths.go
 * `subsysPath`, GetOwnCgroupPath), per controller; the host starts runc, so that is the host's
 * own cgroup. Works for cgroup v1 (this machine: memory under /sys/fs/cgroup/memory/<own>/) and
 * v2 (one unified tree).
 */
export interface CgroupDirs {
  version: 1 | 2
  memory?: string
  pids?: string
}

interface CgroupMount {
  mountPoint: string
  fsType: string
  options: string[]
}

export async function containerCgroupDirs(cgroupsPath: string): Promise<CgroupDirs> {
  const [own, mounts] = await Promise.all([
    readFile('/proc/self/cgroup', 'utf8'),
    readFile('/proc/self/mountinfo', 'utf8').then(parseCgroupMounts),
  ])
  const v1 = (controller: string) => {
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.options.includes(controller))
    const line = own.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller))
    if (!mount || line === undefined) return undefined
    return join(mount.mountPoint, line.split(':').slice(2).join(':'), cgroupsPath)
  }
  const memory = v1('memory')
  if (memory) return { version: 1, memory, pids: v1('pids') }
  const unified = mounts.find((m) => m.fsType === 'cgroup2')
  const line = own.split('\n').find((l) => l.startsWith('0::'))
  if (!unified || line === undefined) return { version: 2 }
  const dir = join(unified.mountPoint, line.slice(3), cgroupsPath)
  return { version: 2, memory: dir, pids: dir }
}

/** mountinfo(5): `id parent maj:min root mountpoint opts [optional…] - fstype source superopts`. */
function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = []
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const [fsType, , superOptions] = right.split(' ')
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue
    const mountPoint = unescapeMountPath(left.split(' ')[4]!)
    mounts.push({ mountPoint, fsType, options: (superOptions ?? '').split(',') })
  }
  return mounts
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** How many times the kernel's OOM killer killed a process of this cgroup (0 if unknown). */
export async function readOomKills(dirs: CgroupDirs): Promise<number> {
  if (!dirs.memory) return 0
  const file = dirs.version === 1 ? 'memory.oom_control' : 'memory.events'
  return readCounter(join(dirs.memory, file), 'oom_kill')
}

/** How many forks failed because the pids limit was reached (pids.events `max`). */
export async function readPidsLimitHits(dirs: CgroupDirs): Promise<number> {
  return dirs.pids ? readCounter(join(dirs.pids, 'pids.events'), 'max') : 0
}

/** Current memory use in bytes, and processes/threads, of a running node. */
export async function readUsage(dirs: CgroupDirs): Promise<{ memoryBytes: number; pids: number }> {
  const memFile = dirs.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'
  const [memoryBytes, pids] = await Promise.all([
    dirs.memory ? readNumber(join(dirs.memory, memFile)) : 0,
    dirs.pids ? readNumber(join(dirs.pids, 'pids.current')) : 0,
  ])
  return { memoryBytes, pids }
}

/** Whether cgroup v1 memory+swap accounting exists (runc fails on `memory.swap` without it). */
export async function hasMemorySwapLimit(dirs: CgroupDirs): Promise<boolean> {
  if (dirs.version === 2 || !dirs.memory) return false
  const parent = join(dirs.memory, '..')
  return access(join(parent, 'memory.memsw.limit_in_bytes')).then(
    () => true,
    () => false,
  )
}

async function readCounter(file: string, name: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line ? Number(line.slice(name.length + 1)) || 0 : 0
}

async function readNumber(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8').catch(() => '0')).trim()) || 0
}
