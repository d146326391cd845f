import { readdir } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import {
  leaseAddresses,
  leasesOf,
  leaseSubnet,
  parseSubnetRange,
  releaseSubnet,
} from '../../../host/sandbox/subnet-leases.ts'
import { tmpDir } from '../../support/tmp.ts'

describe('subnet leases', () => {
  it('cuts a range into /30s: host side .1, node side .2', () => {
    const range = parseSubnetRange('10.213.0.0/16')
    expect(range.count).toBe(16384)
    expect(leaseAddresses(range, 0)).toEqual({
      index: 0,
      hostIp: '10.213.0.1',
      nodeIp: '10.213.0.2',
      prefixLength: 30,
    })
    expect(leaseAddresses(range, 64)).toMatchObject({ hostIp: '10.213.1.1', nodeIp: '10.213.1.2' })
    expect(leaseAddresses(range, 16383)).toMatchObject({
      hostIp: '10.213.255.253',
      nodeIp: '10.213.255.254',
    })
    // host bits in the range are ignored
    expect(parseSubnetRange('192.168.7.9/24')).toEqual(parseSubnetRange('192.168.7.0/24'))
  })

  it.each([
    ['10.213.0.0'], // no prefix length
    ['10.213.0.0/31'], // smaller than one /30
    ['10.213.0.0/4'], // absurdly large
    ['10.256.0.0/16'], // not an address
    ['fd00::/64'], // IPv6 is not supported
  ])('refuses the range %s', (cidr) => {
    expect(() => parseSubnetRange(cidr)).toThrow(/invalid node subnet range/)
  })

  it('gives each lease to one owner, reuses released ones and reports exhaustion', async () => {
    const dir = await tmpDir()
    const range = parseSubnetRange('10.9.0.0/29') // two /30s
    const leases = await Promise.all([
      leaseSubnet(dir, range, 'aaaaaa'),
      leaseSubnet(dir, range, 'bbbbbb'),
    ])
    expect(leases.map((l) => l.index).sort()).toEqual([0, 1])
    await expect(leaseSubnet(dir, range, 'cccccc')).rejects.toMatchObject({
      code: 'SUBNETS_EXHAUSTED',
    })
    expect(await leasesOf(dir, 'aaaaaa')).toHaveLength(1)
    await releaseSubnet(dir, leases[0]!.index)
    expect((await leaseSubnet(dir, range, 'cccccc')).index).toBe(leases[0]!.index)
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]) // no drafts left
  })
})
