import { constants } from 'node:os'
import { readOomKills, readPidsLimitHits, readUsage, type CgroupDirs } from './cgroups.ts'
import type { OutputListener } from './output-tail.ts'
import type { RunningContainer } from './start-container.ts'

/**
 * Why a node's process ended:
 * - `exited`: it exited by itself (any status; a crash that ends in exit(1) is here too),
 * - `signaled`: a signal killed it that the host did not send (SIGSEGV, SIGABRT, …),
 * - `oom`: the kernel's OOM killer killed it at the node's memory limit,
 * - `stopped`: the host ended it (stop, kill, destroy),
 * - `runtime-lost`: the node's shim was killed before it could write the runtime's status, and
 *   the runtime is gone too; the container may still run until destroyed.
 */
export type NodeExitReason = 'exited' | 'signaled' | 'oom' | 'stopped' | 'runtime-lost'

export interface NodeExit {
  reason: NodeExitReason
  /** The exit status when the process exited by itself, else null. */
  code: number | null
  /** The signal that killed it, else null. */
  signal: NodeJS.Signals | null
  /** OOM kills in the node's memory cgroup (a kill of any of its processes counts). */
  oomKills: number
  /** Forks refused at the pids limit. */
  pidsLimitHits: number
  /** One line for logs and 5xx bodies: "exited with status 3", "killed by the OOM killer". */
  message: string
}

export interface NodeUsage {
  memoryBytes: number
  /** Tasks (processes and threads) in the node's pids cgroup. */
  pids: number
  oomKills: number
  pidsLimitHits: number
}

/** Milliseconds spent in each step of `specialize`. */
export interface SpecializeTimings {
  /** Overlay mount (with the image user lookup, which runs beside it). */
  mountMs: number
  /** config.json written. */
  configMs: number
  /** Runtime spawned until the container's process exists (its PID file is written). */
  startMs: number
  totalMs: number
}

/** A running node: its first process, as seen from the host. */
export interface NodeProcess {
  /** Host PID of the node's first process (PID 1 inside the node). */
  readonly pid: number
  /** The node's address on its veth; the host connects to servers in the node here. */
  readonly ip: string
  /** Resolves once when the process is gone; never rejects. */
  readonly exited: Promise<NodeExit>
  readonly timings: SpecializeTimings
  /** The last 64 KiB of stdout and stderr. */
  output(): { stdout: string; stderr: string }
  /** Calls `listener` with every later chunk; returns a function that stops it. */
  onOutput(listener: OutputListener): () => void
  /** Sends a signal to the node's first process (SIGKILL by default). A no-op once exited. */
  kill(signal?: NodeJS.Signals): void
  /**
   * SIGTERM, then SIGKILL after `graceMs`. PID 1 of a namespace ignores signals it has no
   * handler for, so a process without a SIGTERM handler dies only at the SIGKILL.
   */
  stop(graceMs?: number): Promise<NodeExit>
  usage(): Promise<NodeUsage>
  /** The node's destroy (see SandboxNode.destroy). */
  destroy(): Promise<void>
}

export interface NodeHandleParts {
  container: RunningContainer
  ip: string
  cgroups: CgroupDirs
  timings: SpecializeTimings
  destroy: () => Promise<void>
}

/** The host's handle of a running node, started by this host or adopted from a dead one. */
export function createNodeHandle(parts: NodeHandleParts): NodeProcess {
  const { container, cgroups } = parts
  const { pid, output } = container
  let stopping = false
  let done = false
  const exited = container.exit.then(async (code) => {
    done = true
    const [oomKills, pidsLimitHits] = await Promise.all([
      readOomKills(cgroups),
      readPidsLimitHits(cgroups),
    ])
    return classifyExit({ code, signal: null, oomKills, pidsLimitHits, stopping })
  })
  const kill = (sig: NodeJS.Signals = 'SIGKILL') => {
    if (done) return
    stopping = true
    try {
      process.kill(pid, sig)
    } catch {
      // ESRCH: it is exiting right now; `exited` will say so.
    }
  }
  return {
    pid,
    ip: parts.ip,
    exited,
    timings: parts.timings,
    output: () => ({ stdout: output.text('stdout'), stderr: output.text('stderr') }),
    onOutput: (listener) => output.listen(listener),
    kill,
    async stop(graceMs = 5000) {
      kill('SIGTERM')
      const timer = setTimeout(() => kill('SIGKILL'), graceMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    },
    async usage() {
      const [now, oomKills, pidsLimitHits] = await Promise.all([
        readUsage(cgroups),
        readOomKills(cgroups),
        readPidsLimitHits(cgroups),
      ])
      return { ...now, oomKills, pidsLimitHits }
    },
    destroy: parts.destroy,
  }
}

export function classifyExit(e: {
  code: number | null
  signal: NodeJS.Signals | null
  oomKills: number
  pidsLimitHits: number
  stopping: boolean
}): NodeExit {
  const base = { oomKills: e.oomKills, pidsLimitHits: e.pidsLimitHits }
  if (e.code === null) {
    const message = "the node's shim ended without the runtime's status; the node may still run"
    return { ...base, reason: 'runtime-lost', code: null, signal: null, message }
  }
  const signal = e.code > 128 ? signalName(e.code - 128) : null
  if (e.oomKills > 0 && (signal === 'SIGKILL' || !e.stopping)) {
    return {
      ...base,
      reason: 'oom',
      code: null,
      signal,
      message: 'killed by the OOM killer at the memory limit',
    }
  }
  if (e.stopping) {
    const message = signal
      ? `stopped by the host (${signal})`
      : `stopped by the host (status ${e.code})`
    return { ...base, reason: 'stopped', code: signal ? null : e.code, signal, message }
  }
  if (signal)
    return { ...base, reason: 'signaled', code: null, signal, message: `killed by ${signal}` }
  return {
    ...base,
    reason: 'exited',
    code: e.code,
    signal: null,
    message: `exited with status ${e.code}`,
  }
}

function signalName(n: number): NodeJS.Signals | null {
  const entry = Object.entries(constants.signals).find(([, v]) => v === n)
  return entry ? (entry[0] as NodeJS.Signals) : null
}
