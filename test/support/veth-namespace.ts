import { runCommand } from '../../host/os/run-command.ts'

export interface VethNamespace {
  /** The namespace's name (`ip netns`); /run/netns/<name> for nsenter. */
  name: string
  /** The address on this side of the pair (`<subnet>.1`) and inside the namespace (`<subnet>.2`). */
  hostAddress: string
  nsAddress: string
  /** Removes the pair and the namespace (idempotent; what ran inside it must be stopped first). */
  close(): Promise<void>
}

/**
 * A network namespace joined to this one by a veth pair on a /30 (`<subnet>.1` here, `.2`
 * inside), both ends capped by tbf when `rateMbit` is given: an emulated link (this kernel has no
 * netem; delay comes from a proxy). Used by the cold-start benchmark's links and by e2e tests.
 */
export async function createVethNamespace(o: {
  name: string
  hostVeth: string
  nsVeth: string
  subnet: string
  rateMbit?: number
}): Promise<VethNamespace> {
  const close = async () => {
    await runCommand('ip', ['link', 'del', o.hostVeth]).catch(() => {})
    await runCommand('ip', ['netns', 'del', o.name]).catch(() => {})
  }
  try {
    await runCommand('ip', ['netns', 'add', o.name])
    const inNs = (...args: string[]) => runCommand('ip', ['netns', 'exec', o.name, ...args])
    await runCommand('ip', ['link', 'add', o.hostVeth, 'type', 'veth', 'peer', 'name', o.nsVeth])
    await runCommand('ip', ['link', 'set', o.nsVeth, 'netns', o.name])
    await runCommand('ip', ['addr', 'add', `${o.subnet}.1/30`, 'dev', o.hostVeth])
    await runCommand('ip', ['link', 'set', o.hostVeth, 'up'])
    await inNs('ip', 'addr', 'add', `${o.subnet}.2/30`, 'dev', o.nsVeth)
    await inNs('ip', 'link', 'set', o.nsVeth, 'up')
    await inNs('ip', 'link', 'set', 'lo', 'up')
    if (o.rateMbit !== undefined) {
      await runCommand('tc', tbf(o.hostVeth, o.rateMbit))
      await inNs('tc', ...tbf(o.nsVeth, o.rateMbit))
    }
  } catch (err) {
    await close()
    throw err
  }
  return { name: o.name, hostAddress: `${o.subnet}.1`, nsAddress: `${o.subnet}.2`, close }
}

/** Token bucket: burst ≥ rate/HZ (at least one 64 KiB GSO segment), 50 ms of queue. */
function tbf(dev: string, rateMbit: number): string[] {
  const burstBytes = Math.max(Math.ceil((rateMbit * 1e6) / 8 / 250), 65536)
  return ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms']
}
