import { describe, expect, it } from 'vitest'
import { IndexCache } from '../../../host/mount/index-cache.ts'
import type { IndexTree } from '../../../runtime/format/index-tree.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'

const indexOf = (entries: number): IndexTree => ({ entryCount: entries }) as IndexTree

describe('IndexCache', () => {
  it('keeps indexes up to a total of entries, dropping the least recently used first', () => {
    const cache = new IndexCache(10)
    const [a, b, c] = [indexOf(4), indexOf(4), indexOf(4)]
    cache.set(sha256Of('a'), a)
    cache.set(sha256Of('b'), b)
    expect(cache.get(sha256Of('a'))).toBe(a) // a is now the most recent
    cache.set(sha256Of('c'), c) // 12 > 10: b goes
    expect(cache.get(sha256Of('b'))).toBeUndefined()
    expect(cache.get(sha256Of('a'))).toBe(a)
    expect(cache.get(sha256Of('c'))).toBe(c)
  })

  it('does not keep an index larger than the bound, and clear() empties it', () => {
    const cache = new IndexCache(10)
    cache.set(sha256Of('big'), indexOf(11))
    expect(cache.get(sha256Of('big'))).toBeUndefined()
    cache.set(sha256Of('a'), indexOf(3))
    cache.clear()
    expect(cache.get(sha256Of('a'))).toBeUndefined()
    cache.set(sha256Of('b'), indexOf(10)) // the count restarted at 0
    expect(cache.get(sha256Of('b'))).toBeDefined()
  })
})
