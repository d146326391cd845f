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
 * A dead instance whose nodes outlive it (`keepNodes`) is left to a sandbox of its own state
 * directory, which takes it over (reclaim-nodes.ts) or removes it.
 */
export async function cleanupLeftovers(o: LeftoverOptions): Promise<LeftoverReport> {
  const report = emptyLeftoverReport()
  const records = await listInstances(o.registryDir)
  const alive = new Set<string>()
  const dead: InstanceRecord[] = []
  for (const r of records) {
    if (r.id === o.exceptInstance || (await isInstanceAlive(r))) alive.add(r.id)
    // Its nodes wait for the next host on its own state directory.
    else if (r.keepNodes && r.stateDir !== o.stateDir) continue
    else dead.push(r)
  }
  for (const name of await readdir(o.stateDir).catch(() => [])) {
    if (!/^[a-z0-9]{6}$/.test(name) || alive.has(name) || dead.some((d) => d.id === name)) continue
    dead.push({ id: name, pid: 0, startTime: '', stateDir: o.stateDir, runtime: o.runtime })
  }
  for (const record of dead) {
    await cleanupInstance(record, o, report)
    await attemptUnregister(o.registryDir, record.id, report)
  }
  return report
}

/**
 * What a sandbox that took over a dead instance keeps of it (sandbox.ts `keepNodes`): the nodes
 * it adopts, by their container ids, node directories, network names and leases. Everything else
 * of the instance is removed; its firewall table, directory and registry record stay.
 */
export interface KeptNodes {
  containers: Set<string>
  dirs: Set<string>
  netns: Set<string>
  veths: Set<string>
  leases: Set<number>
}

export function emptyLeftoverReport(): LeftoverReport {
  return { instances: [], containers: [], mounts: [], netns: [], veths: [], leases: [], errors: [] }
}

/** Removes everything of instance `r` but what `keep` names (cleanupLeftovers without it). */
export async function cleanupInstance(
  r: InstanceRecord,
  o: Pick<LeftoverOptions, 'leaseDir'>,
  report: LeftoverReport,
  keep?: KeptNodes,
) {
  const attempt = async (what: string, f: () => Promise<void>) => {
    await f().catch(
      (err: unknown) => void report.errors.push(`${r.id} ${what}: ${describeError(err)}`),
    )
  }
  report.instances.push(r.id)
  const runtime = createOciRuntime(r.runtime.name, { root: r.runtime.root, path: r.runtime.path })
  const prefix = `thaw-${r.id}-`
  const ours = (id: string) => id.startsWith(prefix) && !keep?.containers.has(id)
  for (const id of (await runtime.containerIds()).filter(ours)) {
    await attempt(`container ${id}`, async () => {
      await runtime.delete(id)
      report.containers.push(id)
    })
  }
  const instanceDir = join(r.stateDir, r.id)
  const kept = (path: string) =>
    [...(keep?.dirs ?? [])].some((d) => path === d || path.startsWith(`${d}/`))
  await attempt('mounts', async () => {
    if (!keep) {
      report.mounts.push(...(await mountsUnder(instanceDir)))
      return unmountAll(instanceDir)
    }
    for (const name of await readdir(instanceDir).catch(() => [])) {
      const dir = join(instanceDir, name)
      if (kept(dir)) continue
      report.mounts.push(...(await mountsUnder(dir)))
      await unmountAll(dir)
      if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true })
    }
  })
  const found = await networkLeftovers(prefix, `tv${r.id}`)
  const netns = found.netns.filter((n) => !keep?.netns.has(n))
  const veths = found.veths.filter((v) => !keep?.veths.has(v))
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
  if (!keep) await attempt('firewall', () => removeHostFirewall(r.id))
  await attempt('leases', async () => {
    for (const index of await leasesOf(o.leaseDir, r.id)) {
      if (keep?.leases.has(index)) continue
      await releaseSubnet(o.leaseDir, index)
      report.leases.push(index)
    }
    const drafts = (await readdir(o.leaseDir).catch(() => [])).filter((n) =>
      n.startsWith(`.${r.id}-`),
    )
    await Promise.all(drafts.map((d) => rm(join(o.leaseDir, d), { force: true })))
  })
  if (keep) return
  if ((await mountsUnder(instanceDir)).length === 0) {
    await attempt('state dir', () => rm(instanceDir, { recursive: true, force: true }))
  }
}

async function attemptUnregister(registryDir: string, id: string, report: LeftoverReport) {
  await unregisterInstance(registryDir, id).catch(
    (err: unknown) => void report.errors.push(`${id} registry: ${describeError(err)}`),
  )
}
