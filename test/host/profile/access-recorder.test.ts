import { afterEach, describe, expect, it, vi } from 'vitest'
import { AccessRecorder } from '../../../host/profile/access-recorder.ts'
import type { Digest } from '../../../runtime/oci/digest.ts'

const subject = `sha256:${'a'.repeat(64)}` as Digest

describe('AccessRecorder', () => {
  afterEach(() => void vi.useRealTimers())

  it('counts from its making by default: the limit runs whether anything is read or not', () => {
    vi.useFakeTimers()
    let now = 1000
    const recorder = new AccessRecorder({ subject, limitMs: 500, now: () => now })
    now += 400
    recorder.open('/bin/app')
    vi.advanceTimersByTime(500)
    expect(recorder.recording).toBe(false)
    recorder.open('/late') // after the limit: not recorded
    expect(recorder.stop().entries).toEqual([{ path: '/bin/app', t: 400, ranges: [] }])
  })

  it('fromFirstAccess: the clock and the limit start at the first access (an image pulled before it runs)', () => {
    vi.useFakeTimers()
    let now = 1000
    const recorder = new AccessRecorder({
      subject,
      limitMs: 500,
      fromFirstAccess: true,
      now: () => now,
    })
    // Minutes pass between the pull and the container's start: still recording.
    vi.advanceTimersByTime(60_000)
    now += 60_000
    expect(recorder.recording).toBe(true)
    recorder.open('/bin/app')
    now += 120
    recorder.read('/lib/libc.so', 0, 4096)
    vi.advanceTimersByTime(499)
    expect(recorder.recording).toBe(true)
    vi.advanceTimersByTime(1)
    expect(recorder.recording).toBe(false)
    expect(recorder.stop().entries).toEqual([
      { path: '/bin/app', t: 0, ranges: [] },
      { path: '/lib/libc.so', t: 120, ranges: [[0, 4096]] },
    ])
  })
})
