import { describe, expect, it } from 'vitest'
import {
  BundleDecoder,
  bundleSize,
  encodeBundlePrefix,
  type BundleHeader,
} from '../../../runtime/artifact/index.ts'
import { sha256Of } from '../../../runtime/oci/index.ts'

const blobA = sha256Of('a')
const blobB = sha256Of('b')
const header: BundleHeader = {
  version: 1,
  artifact: sha256Of('artifact'),
  profile: sha256Of('profile'),
  records: [
    { blob: blobA, offset: 0, length: 5 },
    { blob: blobB, offset: 100, length: 3 },
    { blob: blobA, offset: 10, length: 4 },
  ],
}
const bodies = [Buffer.from('index'), Buffer.from('xyz'), Buffer.from('1234')]
const bundle = Buffer.concat([encodeBundlePrefix(header), ...bodies])

describe('BundleDecoder', () => {
  it('yields each record as soon as its last byte arrives, whatever the chunking', () => {
    for (const size of [1, 2, 7, 13, bundle.length]) {
      const decoder = new BundleDecoder()
      const got: string[] = []
      for (let at = 0; at < bundle.length; at += size) {
        for (const r of decoder.push(bundle.subarray(at, at + size))) {
          got.push(`${r.index}:${r.record.blob === blobA ? 'A' : 'B'}:${Buffer.from(r.bytes)}`)
        }
      }
      decoder.end()
      expect(got).toEqual(['0:A:index', '1:B:xyz', '2:A:1234'])
      expect(decoder.position).toBe(bundleSize(header))
    }
  })

  it('hands out the first record before the rest of the bundle has arrived', () => {
    const decoder = new BundleDecoder()
    const firstEnd = encodeBundlePrefix(header).length + 5
    expect(decoder.push(bundle.subarray(0, firstEnd)).map((r) => r.index)).toEqual([0])
    expect(decoder.done).toBe(false)
    expect(() => decoder.end()).toThrow(/truncated at/)
  })

  // Each malformed bundle is refused with BUNDLE_INVALID, never read as records.
  const bad: [string, Buffer][] = [
    ['bad magic', Buffer.concat([Buffer.from('NOTABDL1'), bundle.subarray(8)])],
    ['header is not JSON', withHeader(Buffer.from('{nope'))],
    [
      'header misses records',
      withHeader(Buffer.from(JSON.stringify({ ...header, records: undefined }))),
    ],
    [
      'a record with a bad digest',
      withHeader(
        Buffer.from(
          JSON.stringify({ ...header, records: [{ blob: 'sha256:x', offset: 0, length: 1 }] }),
        ),
      ),
    ],
    ['bytes after the last record', Buffer.concat([bundle, Buffer.from('!')])],
  ]
  it.each(bad)('refuses a bundle with %s', (_name, bytes) => {
    const decoder = new BundleDecoder()
    expect(() => decoder.push(bytes)).toThrow(expect.objectContaining({ code: 'BUNDLE_INVALID' }))
  })
})

function withHeader(json: Buffer): Buffer {
  const prefix = Buffer.alloc(12)
  prefix.write('THAWBDL1')
  prefix.writeUInt32BE(json.length, 8)
  return Buffer.concat([prefix, json])
}
