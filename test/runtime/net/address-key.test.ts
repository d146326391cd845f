import { describe, expect, it } from 'vitest'
import { addressKey } from '../../../runtime/net/address-key.ts'

describe('addressKey', () => {
  it.each([
    // IPv4 as it is
    ['127.0.0.1', '127.0.0.1'],
    ['10.1.2.3', '10.1.2.3'],
    // an IPv4 client on a dual-stack socket is still that IPv4 address
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    // an IPv6 client is its /64: every address of one /64 is one client
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:0:0:0:ffff', '2001:db8:1:2::/64'],
    // `::` in the network half, and a zone index
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key)
  })
})
