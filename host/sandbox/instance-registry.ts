import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { OciRuntimeName } from './oci-runtime.ts'

/**
 * Every running sandbox instance on the machine is a file `<registry>/instances/<id>.json`,
 * naming its process and what it created outside its state dir. An instance whose process is
 * gone (host crash, SIGKILL) left netns, veths, mounts, containers and subnet leases behind;
 * the next instance to start finds them here. The process is identified by PID *and* start time,
 * so a recycled PID does not keep a dead instance "alive".
 */
export interface InstanceRecord {
  id: string
  pid: number
  /** /proc/<pid>/stat field 22 (starttime, clock ticks since boot). */
  startTime: string
  stateDir: string
  runtime: { name: OciRuntimeName; path: string; root: string }
  /**
   * Its nodes outlive it (sandbox.ts `keepNodes`): once it is dead, only a sandbox of the same
   * state directory removes (or takes over) what it left, not any other instance's cleanup.
   */
  keepNodes?: boolean
}

export function instancesDir(registryDir: string): string {
  return join(registryDir, 'instances')
}

export async function registerInstance(registryDir: string, record: InstanceRecord): Promise<void> {
  const dir = instancesDir(registryDir)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.${record.id}.tmp`)
  await writeFile(tmp, JSON.stringify(record))
  await rename(tmp, join(dir, `${record.id}.json`))
}

export async function unregisterInstance(registryDir: string, id: string): Promise<void> {
  await rm(join(instancesDir(registryDir), `${id}.json`), { force: true })
}

export async function listInstances(registryDir: string): Promise<InstanceRecord[]> {
  const dir = instancesDir(registryDir)
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.json'))
  const records: InstanceRecord[] = []
  for (const name of names) {
    try {
      records.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as InstanceRecord)
    } catch {
      // Torn or foreign file: not an instance we can reason about; leave it alone.
    }
  }
  return records
}

/** The start time of a live process, or undefined if there is none with that PID. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  if (stat === undefined) return undefined
  // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
}

export async function isInstanceAlive(record: InstanceRecord): Promise<boolean> {
  return (await processStartTime(record.pid)) === record.startTime
}
