import { appendFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AppLogs } from '../../../host/logs/app-logs.ts'
import { tmpDir } from '../../support/tmp.ts'

const info = (message: string) => ({ level: 'info' as const, source: 'user' as const, message })

describe('AppLogs kept on disk (AppLogs.open)', () => {
  it('reads every app’s ring back after a restart, and numbers on from the last record', async () => {
    const dir = await tmpDir('thaw-logs-')
    const first = await AppLogs.open(dir)
    first.append('a', info('one'))
    first.append('b', { level: 'warn', source: 'host', message: 'two', node: 'b-0' })
    first.append('a', info('three'))
    await first.settled()

    const again = await AppLogs.open(dir)
    expect(again.read('a').map((r) => [r.seq, r.message])).toEqual([
      [1, 'one'],
      [3, 'three'],
    ])
    expect(again.read('b')).toEqual([
      expect.objectContaining({ seq: 2, level: 'warn', node: 'b-0' }),
    ])
    expect(again.append('a', info('four')).seq).toBe(4)
  })

  it('skips a line cut by a crash, and keeps appending after it', async () => {
    const dir = await tmpDir('thaw-logs-')
    const first = await AppLogs.open(dir)
    first.append('a', info('whole'))
    await first.settled()
    await appendFile(join(dir, 'a.ndjson'), '{"seq":2,"time":"2026-')
    const again = await AppLogs.open(dir)
    expect(again.read('a').map((r) => r.message)).toEqual(['whole'])
    again.append('a', info('after'))
    await again.settled()
    expect((await AppLogs.open(dir)).read('a').map((r) => r.message)).toEqual(['whole', 'after'])
  })

  it('keeps each file bounded: past twice the ring’s bytes it is rewritten with what the ring keeps', async () => {
    const dir = await tmpDir('thaw-logs-')
    const maxBytes = 4096
    const logs = await AppLogs.open(dir, { maxBytes })
    for (let i = 1; i <= 500; i++) {
      logs.append('a', info(`${i} ${'x'.repeat(100)}`))
      if (i % 50 === 0) await logs.settled() // batches, as records come in over time
    }
    await logs.settled()
    const size = (await stat(join(dir, 'a.ndjson'))).size
    expect(size).toBeLessThanOrEqual(2 * maxBytes + 50 * 200)
    const kept = logs.read('a').map((r) => r.message)
    const reread = (await AppLogs.open(dir, { maxBytes })).read('a').map((r) => r.message)
    expect(reread).toEqual(kept)
    expect(reread.at(-1)).toMatch(/^500 /)
  })

  it('removes a deleted app’s file; an app made again under that name starts a new one', async () => {
    const dir = await tmpDir('thaw-logs-')
    const logs = await AppLogs.open(dir)
    logs.append('gone', info('old'))
    logs.forget('gone')
    logs.append('gone', info('new'))
    await logs.settled()
    expect(await readdir(dir)).toEqual(['gone.ndjson'])
    expect((await AppLogs.open(dir)).read('gone').map((r) => r.message)).toEqual(['new'])
  })
})
