import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { runCommand } from '../../../host/os/run-command.ts'
import { createVethNamespace, type VethNamespace } from '../../support/veth-namespace.ts'
import { cpuMs, startChild, type BenchChild } from './child.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const TSX = join(HERE, '../../../node_modules/tsx/dist/loader.mjs')

export type LinkName = 'loopback' | 'same-region' | 'other-region'

export interface LinkSpec {
  name: LinkName
  label: string
  /** tbf rate in Mbit/s; undefined: not capped. */
  rateMbit?: number
  /** Added to every round trip by the delay proxy; 0: no proxy. */
  delayMs: number
}

export const LINKS: Record<LinkName, LinkSpec> = {
  loopback: { name: 'loopback', label: 'loopback (no cap, no delay)', delayMs: 0 },
  'same-region': {
    name: 'same-region',
    label: 'same region: 1 Gbit/s, +1 ms RTT',
    rateMbit: 1000,
    delayMs: 1,
  },
  'other-region': {
    name: 'other-region',
    label: 'other region: 100 Mbit/s, +20 ms RTT',
    rateMbit: 100,
    delayMs: 20,
  },
}

/** How a network client (containerd) reaches the registry over one emulated link. */
export interface BenchLink {
  readonly spec: LinkSpec
  /** host:port the client uses for the registry. */
  readonly registryAddress: string
  /** `/run/netns/<name>` the client runs in; undefined: the host's own namespace (loopback). */
  readonly netnsPath: string | undefined
  /** `[command, args]` to run a command on the client's side of the link. */
  wrap(command: string, args: string[]): [string, string[]]
  /** CPU time the delay proxy has used so far (0 without a proxy). */
  proxyCpuMs(): Promise<number>
  close(): Promise<void>
}

const PREFIX = 'thawbench'

/**
 * loopback: the registry straight on 127.0.0.1. Otherwise a network namespace the benchmark
 * creates, joined to the host by a veth pair (10.214.<n>.1 host side, .2 inside), both ends
 * capped with tbf (the kernel has no netem), and the delay proxy on the host end in front of the
 * registry. One shaped hop: the registry→client direction crosses the host veth once.
 */
export async function createLink(
  spec: LinkSpec,
  registryPort: number,
  n: number,
): Promise<BenchLink> {
  if (spec.rateMbit === undefined && spec.delayMs === 0) {
    return {
      spec,
      registryAddress: `127.0.0.1:${registryPort}`,
      netnsPath: undefined,
      wrap: (command, args) => [command, args],
      proxyCpuMs: async () => 0,
      close: async () => {},
    }
  }
  const ns = `${PREFIX}-${process.pid}-${n}`
  const hostVeth = `tbh${process.pid % 100000}${n}`
  const nsVeth = `tbn${process.pid % 100000}${n}`
  const subnet = `10.214.${(process.pid + n) % 250}`
  let proxy: BenchChild | undefined
  let veth: VethNamespace | undefined
  const close = async () => {
    await proxy?.stop()
    await veth?.close()
  }
  try {
    veth = await createVethNamespace({ name: ns, hostVeth, nsVeth, subnet, rateMbit: spec.rateMbit })
    proxy = startChild(process.execPath, [
      '--import',
      `file://${TSX}`,
      join(HERE, 'delay-proxy.ts'),
      `${subnet}.1`,
      `127.0.0.1:${registryPort}`,
      String(spec.delayMs),
    ])
    const [, port] = await proxy.waitFor(/listening (\d+)/)
    const netnsPath = `/run/netns/${ns}`
    const p = proxy
    return {
      spec,
      registryAddress: `${subnet}.1:${port}`,
      netnsPath,
      // nsenter switches only the network namespace: `ip netns exec` would remount /sys and hide
      // the cgroup v1 mounts runc needs (../shared/peers/80-netns.sh).
      wrap: (command, args) => ['nsenter', [`--net=${netnsPath}`, command, ...args]],
      proxyCpuMs: () => cpuMs(p.pid),
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** Namespaces and veths left by benchmark processes that died (their PID is in the name). */
export async function removeStaleLinks(): Promise<string[]> {
  const { stdout } = await runCommand('ip', ['netns', 'list'])
  const removed: string[] = []
  for (const line of stdout.split('\n')) {
    const m = line.match(new RegExp(`^(${PREFIX}-(\\d+)-(\\d+))`))
    if (!m || isAlive(Number(m[2]))) continue
    await runCommand('ip', ['link', 'del', `tbh${Number(m[2]) % 100000}${m[3]}`]).catch(() => {})
    await runCommand('ip', ['netns', 'del', m[1]!]).catch(() => {})
    removed.push(m[1]!)
  }
  return removed
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
