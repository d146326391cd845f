import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'

/**
 * Each node gets a /30 from a private range: network, host side, node side, broadcast. The
 * range is shared by every thaw instance on the machine (one network namespace holds all host
 * sides), so leases are files created with O_EXCL in a directory all instances use: the first
 * to create `<index>` owns that /30, whatever else runs. A lease names its instance, so leases
 * of instances that died are found and freed by the leftover cleanup.
 */
export interface SubnetLease {
  index: number
  /** The veth end in the host's network namespace. */
  hostIp: string
  /** eth0 inside the node. */
  nodeIp: string
  prefixLength: 30
}

export interface SubnetRange {
  base: number
  count: number
}

/** Parses `a.b.c.d/n` (n ≤ 30) into the /30 blocks it holds. */
export function parseSubnetRange(cidr: string): SubnetRange {
  const m = cidr.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/)
  const octets = m ? m.slice(1, 5).map(Number) : []
  const bits = m ? Number(m[5]) : -1
  if (!m || octets.some((o) => o > 255) || bits < 8 || bits > 30) {
    throw new ThawError(
      'SUBNET_INVALID',
      `invalid node subnet range "${cidr}" (want a.b.c.d/8..30)`,
      {
        fault: 'user',
      },
    )
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  const base =
    (((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) & mask) >>> 0
  return { base, count: 2 ** (30 - bits) }
}

export function leaseAddresses(range: SubnetRange, index: number): SubnetLease {
  const network = range.base + index * 4
  return { index, hostIp: ipv4(network + 1), nodeIp: ipv4(network + 2), prefixLength: 30 }
}

export async function leaseSubnet(
  dir: string,
  range: SubnetRange,
  owner: string,
): Promise<SubnetLease> {
  await mkdir(dir, { recursive: true })
  const taken = new Set((await readdir(dir)).map(Number))
  // The owner is written first and the lease appears by link(2), which fails if the name
  // exists: a lease is never seen without its owner, even after a crash.
  const draft = join(dir, `.${owner}-${process.pid}`)
  await writeFile(draft, owner)
  try {
    for (let index = 0; index < range.count; index++) {
      if (taken.has(index)) continue
      try {
        await link(draft, join(dir, String(index)))
        return leaseAddresses(range, index)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
    }
  } finally {
    await rm(draft, { force: true })
  }
  throw new ThawError(
    'SUBNETS_EXHAUSTED',
    `all ${range.count} node subnets of the range are leased`,
  )
}

export async function releaseSubnet(dir: string, index: number): Promise<void> {
  await rm(join(dir, String(index)), { force: true })
}

/** Lease indexes held by `owner`. */
export async function leasesOf(dir: string, owner: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [])
  const held: number[] = []
  for (const name of names) {
    if (name.startsWith('.')) continue
    const content = await readFile(join(dir, name), 'utf8').catch(() => '')
    if (content === owner) held.push(Number(name))
  }
  return held
}

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}
