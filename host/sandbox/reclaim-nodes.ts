import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError } from '../../runtime/errors.ts'
import type { InstanceRecord } from './instance-registry.ts'
import { processStartTime } from './instance-registry.ts'
import { cleanupInstance, type KeptNodes, type LeftoverReport } from './leftovers.ts'
import { readNodeRecord } from './node-record.ts'
import { SandboxNode, type NodeContext } from './sandbox-node.ts'

/**
 * Takes over the nodes of `dead`, an instance of the same state directory whose host died (the
 * new sandbox runs under its id: sandbox.ts `keepNodes`). A node whose record is readable and
 * whose shim still runs is kept, running, for its owner to adopt or destroy; every other node,
 * and anything of the instance no kept node holds (containers, mounts, network namespaces,
 * veths, leases), is removed as the leftover cleanup removes a dead instance's.
 * Resolves with the kept nodes and the first node index free after them.
 */
export async function reclaimNodes(
  ctx: NodeContext,
  dead: InstanceRecord,
  report: LeftoverReport,
): Promise<{ kept: SandboxNode[]; nextIndex: number }> {
  const kept: SandboxNode[] = []
  let nextIndex = 0
  for (const name of await readdir(ctx.instanceDir).catch(() => [])) {
    const m = /^n([0-9a-z]+)$/.exec(name)
    if (!m) continue
    nextIndex = Math.max(nextIndex, parseInt(m[1]!, 36) + 1)
    const dir = join(ctx.instanceDir, name)
    const record = await readNodeRecord(dir).catch(() => undefined)
    if (!record) continue // half made: the cleanup below removes what it holds
    const shim = record.container?.shim
    const alive = !!shim && (await processStartTime(shim.pid)) === shim.startTime
    const node = await SandboxNode.reclaim(ctx, record, alive)
    if (node.state === 'running') {
      kept.push(node)
      continue
    }
    await node.destroy().catch((err: unknown) => {
      report.errors.push(`${dead.id} node ${name}: ${describeError(err)}`)
    })
  }
  const keep: KeptNodes = {
    containers: new Set(),
    dirs: new Set(),
    netns: new Set(),
    veths: new Set(),
    leases: new Set(),
  }
  for (const node of kept) {
    const h = node.holds
    keep.containers.add(h.container)
    keep.dirs.add(h.dir)
    keep.netns.add(h.netns)
    keep.veths.add(h.hostVeth)
    keep.leases.add(h.lease)
  }
  await cleanupInstance(dead, { leaseDir: ctx.leaseDir }, report, keep)
  return { kept, nextIndex }
}
