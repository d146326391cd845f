import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError } from '../../runtime/errors.ts'
import { removeHostFirewall } from './host-firewall.ts'
import {
  isInstanceAlive,
  listInstances,
  unregisterInstance,
  type InstanceRecord,
} from './instance-registry.ts'
import { mountsUnder, unmountAll } from './mounts.ts'
import { destroyNodeNetwork, networkLeftovers } from './node-network.ts'
import { createOciRuntime, type OciRuntime } from './oci-runtime.ts'
import { leasesOf, releaseSubnet } from './subnet-leases.ts'

/** What one cleanup removed, and what it could not. */
export interface LeftoverReport {
  instances: string[]
  containers: string[]
  mounts: string[]
  netns: string[]
  veths: string[]
  leases: number[]
  errors: string[]
}

export interface LeftoverOptions {
  registryDir: string
  leaseDir: string
  stateDir: string
  /** The runtime for instance directories found in `stateDir` with no registry record. */
  runtime: OciRuntime
  /** Never touched (the instance doing the cleanup). */
  exceptInstance?: string
}

/**
 * Removes what sandbox instances whose process is gone left behind (a host crash, a SIGKILL):
 * their containers, mounts, network namespaces, veths, firewall table, subnet leases and state
 * directories. Dead instances are found in the machine-wide registry (by PID and start time)
 * and as instance directories in `stateDir` with no live owner (the registry lives in /run and
 * is gone after a reboot; a runtime state root on disk is not). Live instances, including
 * concurrent test runs, are never touched: everything is matched by the dead instance's id.
 */
export async function cleanupLeftovers(o: LeftoverOptions): Promise<LeftoverReport> {
  const report: LeftoverReport = {
    instances: [],
    containers: [],
    mounts: [],
    netns: [],
    veths: [],
    leases: [],
    errors: [],
  }
  const records = await listInstances(o.registryDir)
  const alive = new Set<string>()
  const dead: InstanceRecord[] = []
  for (const r of records) {
    if (r.id === o.exceptInstance || (await isInstanceAlive(r))) alive.add(r.id)
    else dead.push(r)
  }
  for (const name of await readdir(o.stateDir).catch(() => [])) {
    if (!/^[a-z0-9]{6}$/.test(name) || alive.has(name) || dead.some((d) => d.id === name)) continue
    dead.push({ id: name, pid: 0, startTime: '', stateDir: o.stateDir, runtime: o.runtime })
  }
  for (const record of dead) await cleanupInstance(record, o, report)
  return report
}

async function cleanupInstance(r: InstanceRecord, o: LeftoverOptions, report: LeftoverReport) {
  const attempt = async (what: string, f: () => Promise<void>) => {
    await f().catch(
      (err: unknown) => void report.errors.push(`${r.id} ${what}: ${describeError(err)}`),
    )
  }
  report.instances.push(r.id)
  const runtime = createOciRuntime(r.runtime.name, { root: r.runtime.root, path: r.runtime.path })
  const prefix = `thaw-${r.id}-`
  for (const id of (await runtime.containerIds()).filter((c) => c.startsWith(prefix))) {
    await attempt(`container ${id}`, async () => {
      await runtime.delete(id)
      report.containers.push(id)
    })
  }
  const instanceDir = join(r.stateDir, r.id)
  await attempt('mounts', async () => {
    report.mounts.push(...(await mountsUnder(instanceDir)))
    await unmountAll(instanceDir)
  })
  const { netns, veths } = await networkLeftovers(prefix, `tv${r.id}`)
  for (const veth of veths) {
    await attempt(`veth ${veth}`, async () => {
      await destroyNodeNetwork({ netns: `${prefix}none`, hostVeth: veth })
      report.veths.push(veth)
    })
  }
  for (const ns of netns) {
    await attempt(`netns ${ns}`, async () => {
      await destroyNodeNetwork({ netns: ns, hostVeth: 'none' })
      report.netns.push(ns)
    })
  }
  await attempt('firewall', () => removeHostFirewall(r.id))
  await attempt('leases', async () => {
    for (const index of await leasesOf(o.leaseDir, r.id)) {
      await releaseSubnet(o.leaseDir, index)
      report.leases.push(index)
    }
    const drafts = (await readdir(o.leaseDir).catch(() => [])).filter((n) =>
      n.startsWith(`.${r.id}-`),
    )
    await Promise.all(drafts.map((d) => rm(join(o.leaseDir, d), { force: true })))
  })
  if ((await mountsUnder(instanceDir)).length === 0) {
    await attempt('state dir', () => rm(instanceDir, { recursive: true, force: true }))
  }
  await attempt('registry', () => unregisterInstance(o.registryDir, r.id))
}
