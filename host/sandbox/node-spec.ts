import { capabilitySets, NODE_CAPABILITIES, type Capability } from './capabilities.ts'
import type { RuntimeMount, RuntimeSpec } from './runtime-spec.ts'
import { nodeSeccompProfile } from './seccomp-profile.ts'
import { idMappings, type IdRange } from './user-namespace.ts'

/**
 * config.json for a node, in two steps: the template (everything that does not depend on the
 * image, built when the node is prepared) and the process part added when it is specialized.
 * The defaults follow `runc spec` (mounts, masked and read-only paths), with less privilege than
 * Docker's defaults: a smaller capability set (capabilities.ts), a stricter seccomp filter
 * (seccomp-profile.ts), a CPU quota, /sys/fs/cgroup read-only, and a user namespace where the
 * sandbox can give the node one (user-namespace.ts).
 */

/** Where the host's per-node directories appear inside a node. */
export const NODE_PATHS = {
  /** Read-only: thaw's files for the node. */
  thaw: '/.thaw',
  /** Read-only: the functions worker (the same host directory for every node). */
  worker: '/.thaw/worker',
  /** Read-write, on the node's scratch tmpfs: unix sockets between the host and the worker. */
  run: '/.thaw/run',
} as const

// runc spec's defaults (libcontainer/specconv/example.go).
const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
]
const READONLY_PATHS = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
  // On cgroup v1 runc mounts a writable tmpfs here and the controllers read-only under it.
  '/sys/fs/cgroup',
]

/** The period of the CPU quota: 100 ms, the kernel's default (cpu.cfs_period_us). */
export const CPU_PERIOD_US = 100_000

export interface NodeSpecTemplateOptions {
  /** Absolute host path of the node's root (the overlay mount point). */
  rootfs: string
  /** The prepared network namespace; without it the node gets a new, empty one (probes). */
  netnsPath?: string
  cgroupsPath: string
  hostname: string
  /** Host directories bound at NODE_PATHS; without `thawDir` nothing is bound under /.thaw. */
  thawDir?: string
  runDir?: string
  workerDir?: string
  /** RLIMIT_NOFILE (soft and hard). It cannot exceed the host's hard limit without CAP_SYS_RESOURCE. */
  maxOpenFiles: number
}

export function nodeSpecTemplate(o: NodeSpecTemplateOptions): RuntimeSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [],
      cwd: '/',
      capabilities: capabilitySets(0, NODE_CAPABILITIES),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: o.maxOpenFiles, soft: o.maxOpenFiles }],
      noNewPrivileges: true,
      // Nodes are disposable: if the host itself runs out of memory, they go first.
      oomScoreAdj: 500,
    },
    root: { path: o.rootfs, readonly: false },
    hostname: o.hostname,
    mounts: [...standardMounts(), ...thawMounts(o)],
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
        o.netnsPath ? { type: 'network', path: o.netnsPath } : { type: 'network' },
      ],
      cgroupsPath: o.cgroupsPath,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  }
}

export interface NodeProcessSpec {
  args: string[]
  env: string[]
  cwd: string
  user: { uid: number; gid: number; additionalGids: number[] }
  memoryBytes: number
  /** Also cap memory+swap at `memoryBytes` (cgroup v1 memsw; only where the kernel has it). */
  limitSwap: boolean
  pids: number
  /** CPU time per period, in thousandths of a CPU (1000 = one CPU's worth). */
  cpuMillis: number
  /** The node's capabilities: its root holds them, other users only in the bounding set. */
  capabilities: readonly Capability[]
  /** thaw's default filter (seccomp-profile.ts), or none at all. */
  seccomp: 'default' | 'unconfined'
  /** Join this user namespace (made with the node's network namespace), mapping `range`. */
  userNamespace?: { path: string; range: IdRange }
  readOnlyBinds?: { source: string; destination: string }[]
}

/** The template with the image's process, the limits, the privileges and extra binds. */
export function specializeSpec(template: RuntimeSpec, p: NodeProcessSpec): RuntimeSpec {
  const binds = (p.readOnlyBinds ?? []).map((b): RuntimeMount => ({
    destination: b.destination,
    type: 'bind',
    source: b.source,
    options: ['rbind', 'ro', 'nosuid', 'nodev'],
  }))
  return {
    ...template,
    process: {
      ...template.process,
      user: p.user,
      args: p.args,
      env: p.env,
      cwd: p.cwd,
      capabilities: capabilitySets(p.user.uid, p.capabilities),
    },
    mounts: [...template.mounts, ...binds],
    linux: {
      ...template.linux,
      ...userNamespace(template, p.userNamespace),
      resources: {
        ...template.linux.resources,
        memory: { limit: p.memoryBytes, ...(p.limitSwap ? { swap: p.memoryBytes } : {}) },
        pids: { limit: p.pids },
        cpu: { quota: Math.round((p.cpuMillis * CPU_PERIOD_US) / 1000), period: CPU_PERIOD_US },
      },
      ...(p.seccomp === 'default' ? { seccomp: nodeSeccompProfile(p.capabilities) } : {}),
    },
  }
}

/** runc joins the user namespace first, then makes the others inside it (nsexec.c). */
function userNamespace(template: RuntimeSpec, u: NodeProcessSpec['userNamespace']) {
  if (!u) return {}
  return {
    namespaces: [{ type: 'user' as const, path: u.path }, ...template.linux.namespaces],
    uidMappings: idMappings(u.range),
    gidMappings: idMappings(u.range),
  }
}

function standardMounts(): RuntimeMount[] {
  const opts = ['nosuid', 'noexec', 'nodev']
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: [...opts, 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: opts },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: [...opts, 'ro'] },
    // Read-only, in the node's cgroup namespace: node reads its memory limit here to size its heap.
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: [...opts, 'relatime', 'ro'],
    },
  ]
}

function thawMounts(o: NodeSpecTemplateOptions): RuntimeMount[] {
  if (!o.thawDir) return []
  const bind = (source: string, destination: string, mode: 'ro' | 'rw'): RuntimeMount => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', mode, 'nosuid', 'nodev', ...(mode === 'rw' ? ['noexec'] : [])],
  })
  const mounts = [bind(o.thawDir, NODE_PATHS.thaw, 'ro')]
  if (o.workerDir) mounts.push(bind(o.workerDir, NODE_PATHS.worker, 'ro'))
  if (o.runDir) mounts.push(bind(o.runDir, NODE_PATHS.run, 'rw'))
  return mounts
}
