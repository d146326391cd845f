import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { classifyExit } from '../../../host/sandbox/node-handle.ts'
import { OutputTail } from '../../../host/sandbox/output-tail.ts'

const none = { oomKills: 0, pidsLimitHits: 0, stopping: false }

describe('classifyExit', () => {
  it.each([
    // the process exited by itself
    [
      { ...none, code: 0, signal: null },
      { reason: 'exited', code: 0, signal: null },
    ],
    [
      { ...none, code: 3, signal: null },
      { reason: 'exited', code: 3, signal: null },
    ],
    // runc reports death by signal n as 128+n
    [
      { ...none, code: 134, signal: null },
      { reason: 'signaled', code: null, signal: 'SIGABRT' },
    ],
    [
      { ...none, code: 139, signal: null },
      { reason: 'signaled', code: null, signal: 'SIGSEGV' },
    ],
    // the memory cgroup's OOM killer fired
    [
      { ...none, code: 137, signal: null, oomKills: 1 },
      { reason: 'oom', signal: 'SIGKILL' },
    ],
    // a child was OOM-killed and the main process gave up
    [{ ...none, code: 1, signal: null, oomKills: 2 }, { reason: 'oom' }],
    // the host stopped it
    [
      { ...none, code: 137, signal: null, stopping: true },
      { reason: 'stopped', signal: 'SIGKILL' },
    ],
    [
      { ...none, code: 0, signal: null, stopping: true },
      { reason: 'stopped', code: 0 },
    ],
    // the runtime process itself was killed
    [{ ...none, code: null, signal: 'SIGKILL' as const }, { reason: 'runtime-lost' }],
  ])('%j → %j', (input, expected) => {
    expect(classifyExit(input)).toMatchObject(expected)
  })
})

describe('OutputTail', () => {
  it('keeps the last bytes of each stream and feeds listeners every later chunk', () => {
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    const tail = new OutputTail({ stdout, stderr }, 8)
    const seen: string[] = []
    stdout.write('early ')
    const stop = tail.listen((stream, chunk) => seen.push(`${stream}:${chunk}`))
    stdout.write('0123456789')
    stderr.write('oops')
    stop()
    stdout.write('AB')
    expect(tail.text('stdout')).toBe('456789AB')
    expect(tail.text('stderr')).toBe('oops')
    expect(seen).toEqual(['stdout:0123456789', 'stderr:oops'])
  })
})
