import { afterEach, describe, expect, it } from 'vitest'
import { SourceSet } from '../../../host/mount/source-set.ts'

const URLS = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3']
const coded = (code: string) => Object.assign(new Error(code), { code })

describe('SourceSet', () => {
  let set: SourceSet | undefined
  afterEach(() => set?.close())

  it('asks the sources in preference order and answers with the first that succeeds', async () => {
    set = new SourceSet({ urls: URLS })
    const asked: string[] = []
    const { value, source } = await set.call('x', async (s) => {
      asked.push(s.url)
      if (s.url !== URLS[1]) throw new Error('refused')
      return 42
    })
    expect([value, source.url, asked]).toEqual([42, URLS[1], URLS.slice(0, 2)])
  })

  it('tries a failed source after the healthy ones until retryAfterMs has passed', async () => {
    set = new SourceSet({ urls: URLS, retryAfterMs: 60_000 })
    await set.call('x', async (s) => {
      if (s.url === URLS[0]) throw new Error('reset')
      return 1
    })
    expect(set.order().map((s) => s.url)).toEqual([URLS[1], URLS[2], URLS[0]])
  })

  it('moves on when a source misses the deadline', async () => {
    set = new SourceSet({ urls: URLS.slice(0, 2), requestTimeoutMs: 50 })
    const { source } = await set.call('x', (s, signal) =>
      s.url === URLS[0]
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        : Promise.resolve(1),
    )
    expect(source.url).toBe(URLS[1])
    expect(set.order()[1]!.url).toBe(URLS[0])
  })

  it.each([
    // every source lacks it: the not-found error itself, so callers can say "no such image"
    ['all not found', () => coded('MANIFEST_UNKNOWN'), 'MANIFEST_UNKNOWN'],
    // every source is unreachable: one error naming all of them
    ['all failing', () => new Error('ECONNREFUSED'), 'SOURCES_UNAVAILABLE'],
  ])('with %s throws %s', async (_name, error, code) => {
    set = new SourceSet({ urls: URLS })
    await expect(set.call('x', async () => Promise.reject(error()))).rejects.toMatchObject({ code })
  })

  it('does not ask other sources about a request none can answer differently', async () => {
    set = new SourceSet({ urls: URLS })
    let asked = 0
    await expect(
      set.call('x', async () => {
        asked++
        throw coded('DIGEST_INVALID')
      }),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' })
    expect(asked).toBe(1)
  })
})
