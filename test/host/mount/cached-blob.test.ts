import { appendFile, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CachedBlob, JOURNAL_RECORD_BYTES } from '../../../host/mount/cached-blob.ts'
import type { Frame } from '../../../runtime/format/frame.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { tmpDir } from '../../support/tmp.ts'

const frame = (i: number): Frame => ({ coff: i * 100, clen: 100, uoff: i * 1000, ulen: 1000, digest: sha256Of(`f${i}`) })
const bytesOf = (i: number) => Buffer.alloc(1000, i + 1)

async function blobWithFrames(n: number): Promise<{ dir: string; paths: { data: string; journal: string } }> {
  const dir = await tmpDir('thaw-cached-blob-')
  const blob = await CachedBlob.open('ab', join(dir, 'ab.data'), join(dir, 'ab.journal'))
  const frames = Array.from({ length: n }, (_, i) => frame(i))
  await blob.store(frames, frames.map((_, i) => bytesOf(i)))
  const paths = blob.paths
  await blob.close()
  return { dir, paths }
}
const reopen = (p: { data: string; journal: string }) => CachedBlob.open('ab', p.data, p.journal)

describe('CachedBlob', () => {
  it('reopens with the journaled frames present and their bytes readable', async () => {
    const { paths } = await blobWithFrames(3)
    const blob = await reopen(paths)
    expect([0, 1, 2].map((i) => blob.has(frame(i)))).toEqual([true, true, true])
    expect(blob.has(frame(3))).toBe(false)
    const buf = Buffer.alloc(1000)
    expect(blob.readInto(buf, 1000, 1000)).toBe(1000)
    expect(buf).toEqual(bytesOf(1))
    await blob.close()
  })

  it.each([
    // a record cut short by a crash while it was appended: dropped, the earlier ones kept
    ['a torn trailing record', async (j: string) => appendFile(j, Buffer.alloc(JOURNAL_RECORD_BYTES - 5, 7)), 3],
    // the last record's bytes changed on disk: its crc32 no longer matches, so it is not trusted
    ['a corrupt last record', async (j: string) => {
      const b = await readFile(j)
      b[b.length - 10]! ^= 0xff
      await writeFile(j, b)
    }, 2],
    // an empty journal (killed before the first record): nothing is present
    ['an empty journal', async (j: string) => truncate(j, 0), 0],
  ] as const)('after %s trusts only the intact records', async (_name, damage, intact) => {
    const { paths } = await blobWithFrames(3)
    await damage(paths.journal)
    const blob = await reopen(paths)
    expect([0, 1, 2].filter((i) => blob.has(frame(i))).length).toBe(intact)
    // records appended after reopening are kept at the next load (the torn tail was cut)
    await blob.store([frame(5)], [bytesOf(5)])
    await blob.close()
    const again = await reopen(paths)
    expect(again.has(frame(5))).toBe(true)
    expect([0, 1, 2].filter((i) => again.has(frame(i))).length).toBe(intact)
    await again.close()
  })

  it('does not trust a frame journaled with other coordinates (another index cutting the blob)', async () => {
    const { paths } = await blobWithFrames(1)
    const blob = await reopen(paths)
    expect(blob.has({ ...frame(0), ulen: 999 })).toBe(false)
    await blob.close()
  })

  it.each([
    // removed under the journal (a cache clear racing an open): the file made anew is empty
    ['the data file is gone', (d: string) => unlink(d)],
    // cut short: it no longer reaches the last journaled frame
    ['the data file is shorter than a journaled frame', (d: string) => truncate(d, 2500)],
    // another file of the same size put in its place (made first: it cannot reuse the inode)
    ['the data file is another file', async (d: string) => {
      await writeFile(`${d}.new`, Buffer.alloc(3000))
      await rename(`${d}.new`, d)
    }],
    // a journal written before its header existed (it may describe a data file made anew)
    ['the journal has no header', async (_d: string, j: string) => {
      await writeFile(j, (await readFile(j)).subarray(JOURNAL_RECORD_BYTES))
    }],
  ] as const)('trusts no journaled frame when %s', async (_name, damage) => {
    const { paths } = await blobWithFrames(3)
    await damage(paths.data, paths.journal)
    const blob = await reopen(paths)
    expect([0, 1, 2].filter((i) => blob.has(frame(i)))).toEqual([])
    // frames stored now are trusted at the next load, and read back
    await blob.store([frame(4)], [bytesOf(4)])
    await blob.close()
    const again = await reopen(paths)
    expect([0, 1, 2, 4].filter((i) => again.has(frame(i)))).toEqual([4])
    const buf = Buffer.alloc(1000)
    expect(again.readInto(buf, 1000, frame(4).uoff)).toBe(1000)
    expect(buf).toEqual(bytesOf(4))
    await again.close()
  })
})
