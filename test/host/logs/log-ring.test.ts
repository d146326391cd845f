import { describe, expect, it } from 'vitest'
import { AppLogs, MAX_MESSAGE_BYTES } from '../../../host/logs/app-logs.ts'
import { fromWorkerLevel, type LogRecord } from '../../../host/logs/log-record.ts'
import { LogRing } from '../../../host/logs/log-ring.ts'
import { parseSince } from '../../../host/logs/since.ts'

const record = (
  seq: number,
  message = `m${seq}`,
  time = new Date(seq * 1000).toISOString(),
): LogRecord => ({
  seq,
  time,
  app: 'a',
  level: 'info',
  source: 'user',
  message,
})

describe('LogRing', () => {
  it('keeps at most maxRecords, dropping the oldest first', () => {
    const ring = new LogRing({ maxRecords: 3, maxBytes: 1e9 })
    for (let i = 1; i <= 10; i++) ring.append(record(i))
    expect(ring.read().map((r) => r.seq)).toEqual([8, 9, 10])
  })

  it('keeps at most maxBytes of records (message bytes plus a fixed cost each)', () => {
    const ring = new LogRing({ maxRecords: 1e9, maxBytes: 4000 })
    for (let i = 1; i <= 100; i++) ring.append(record(i, 'x'.repeat(872))) // 1000 bytes each with the overhead
    expect(ring.size).toBe(4)
    expect(ring.bytes).toBeLessThanOrEqual(4000)
    expect(ring.read().map((r) => r.seq)).toEqual([97, 98, 99, 100])
  })

  it('keeps a single record larger than the byte bound, alone', () => {
    const ring = new LogRing({ maxRecords: 10, maxBytes: 100 })
    ring.append(record(1))
    ring.append(record(2, 'y'.repeat(500)))
    expect(ring.read().map((r) => r.seq)).toEqual([2])
  })

  it('stays bounded over many appends (compaction keeps what it must)', () => {
    const ring = new LogRing({ maxRecords: 5, maxBytes: 1e9 })
    for (let i = 1; i <= 5000; i++) ring.append(record(i))
    expect(ring.read().map((r) => r.seq)).toEqual([4996, 4997, 4998, 4999, 5000])
  })

  it('reads after a record number and from a time', () => {
    const ring = new LogRing({ maxRecords: 100, maxBytes: 1e9 })
    for (let i = 1; i <= 10; i++) ring.append(record(i))
    expect(ring.read({ afterSeq: 7 }).map((r) => r.seq)).toEqual([8, 9, 10])
    expect(ring.read({ sinceMs: 9000 }).map((r) => r.seq)).toEqual([9, 10])
  })

  it('tells subscribers each new record until they unsubscribe', () => {
    const ring = new LogRing({ maxRecords: 2, maxBytes: 1e9 })
    const seen: number[] = []
    const off = ring.subscribe((r) => seen.push(r.seq))
    ring.append(record(1))
    ring.append(record(2))
    off()
    ring.append(record(3))
    expect(seen).toEqual([1, 2])
  })
})

describe('AppLogs', () => {
  it('numbers records across apps and keeps a ring per app', () => {
    const logs = new AppLogs({ maxRecords: 2 })
    logs.append('a', { level: 'info', source: 'user', message: '1' })
    logs.append('b', { level: 'warn', source: 'user', message: '2' })
    logs.append('a', { level: 'error', source: 'user', message: '3' })
    logs.append('a', { level: 'debug', source: 'user', message: '4' })
    expect(logs.read('a').map((r) => [r.seq, r.message, r.level])).toEqual([
      [3, '3', 'error'],
      [4, '4', 'debug'],
    ])
    expect(logs.read('b').map((r) => r.seq)).toEqual([2])
    logs.forget('a')
    expect(logs.read('a')).toEqual([])
  })

  it('cuts a message longer than MAX_MESSAGE_BYTES', () => {
    const logs = new AppLogs()
    const r = logs.append('a', {
      level: 'info',
      source: 'stdout',
      message: 'é'.repeat(MAX_MESSAGE_BYTES),
    })
    expect(Buffer.byteLength(r.message)).toBeLessThan(MAX_MESSAGE_BYTES + 20)
    expect(r.message.endsWith('… (truncated)')).toBe(true)
  })

  it('echoes every record to the host logger at its level (trace as debug)', () => {
    const lines: [string, string][] = []
    const logs = new AppLogs({ logger: { log: (level, msg) => void lines.push([level, msg]) } })
    logs.append('a', { level: 'trace', source: 'user', message: 't' })
    logs.append('a', { level: 'warn', source: 'user', message: 'w' })
    expect(lines).toEqual([
      ['debug', 't'],
      ['warn', 'w'],
    ])
  })

  it('keeps the last maxInvocations invocations, newest first, per app on request', () => {
    const logs = new AppLogs({ maxInvocations: 3 })
    for (let i = 1; i <= 5; i++) {
      const app = i % 2 ? 'odd' : 'even'
      logs.invocations.add({
        id: `${i}`,
        app,
        function: 'f',
        trigger: 'http',
        status: i === 5 ? 500 : 200,
        durationMs: 1,
        cold: i === 1,
      })
    }
    expect(logs.invocations.list().map((r) => [r.id, r.outcome])).toEqual([
      ['5', 'failed'],
      ['4', 'succeeded'],
      ['3', 'succeeded'],
    ])
    expect(logs.invocations.list({ app: 'odd' }).map((r) => r.id)).toEqual(['5', '3'])
  })
})

describe('levels and since', () => {
  it.each([
    ['trace', 'trace'],
    ['debug', 'debug'],
    ['information', 'info'],
    ['warning', 'warn'],
    ['error', 'error'],
    ['critical', 'error'],
  ] as const)('the worker level %s is the record level %s', (worker, record) => {
    expect(fromWorkerLevel(worker)).toBe(record)
  })

  it('parses durations, ISO times and record numbers', () => {
    const now = Date.parse('2026-12-03T12:00:00Z')
    expect(parseSince('5m', now)).toEqual({ sinceMs: now - 300_000 })
    expect(parseSince('90s', now)).toEqual({ sinceMs: now - 90_000 })
    expect(parseSince('2026-12-03T11:00:00Z', now)).toEqual({ sinceMs: now - 3_600_000 })
    expect(parseSince('seq:42', now)).toEqual({ afterSeq: 42 })
    expect(parseSince(undefined, now)).toEqual({})
  })

  it.each(['5', 'm', '5 minutes', 'yesterday', 'seq:', '-5m'])(
    'refuses since %j as a user error',
    (bad) => {
      expect(() => parseSince(bad)).toThrow(
        expect.objectContaining({ code: 'SINCE_INVALID', fault: 'user' }),
      )
    },
  )
})
