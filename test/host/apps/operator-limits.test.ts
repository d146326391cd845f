import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, parseAppInput, type AppLimits } from '../../../host/apps/app-spec.ts'
import { openAppStore } from '../../../host/apps/app-store.ts'
import {
  defaultOperatorLimits,
  parseOperatorLimits,
  type OperatorLimits,
} from '../../../host/apps/operator-limits.ts'
import { nodePrivileges } from '../../../host/pool/pool.ts'
import { nodeSpecTemplate, specializeSpec } from '../../../host/sandbox/node-spec.ts'
import { isThawError } from '../../../runtime/errors.ts'
import { tmpDir } from '../../support/tmp.ts'

const operator: OperatorLimits = {
  maxMemoryBytes: 1024 ** 3,
  maxPids: 512,
  maxCpuMillis: 2000,
  addableCapabilities: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
  allowUnconfined: false,
}

/** The config.json an app's node gets (pool.ts nodePrivileges, then node-spec.ts). */
function specOf(limits: AppLimits) {
  const template = nodeSpecTemplate({
    rootfs: '/r',
    cgroupsPath: 'c',
    hostname: 'h',
    maxOpenFiles: 1024,
  })
  return specializeSpec(template, {
    args: ['node'],
    env: [],
    cwd: '/',
    user: { uid: 0, gid: 0, additionalGids: [] },
    memoryBytes: limits.memoryBytes,
    limitSwap: false,
    pids: limits.pids,
    ...nodePrivileges(limits),
  })
}

async function create(limits: Partial<AppLimits>) {
  const store = await openAppStore(await tmpDir(), { operatorLimits: operator })
  return store.put(parseAppInput({ name: 'app', image: '127.0.0.1:5000/a:1', limits }))
}

describe('app overrides within the operator limits', () => {
  it('gives an app with no overrides the defaults: 1 CPU, no capabilities, the filter', async () => {
    const { app } = await create({})
    expect(app.limits).toMatchObject({ cpuMillis: 1000, addCapabilities: [], seccomp: 'default' })
    const spec = specOf(app.limits)
    expect(spec.linux.resources.cpu).toEqual({ quota: 100_000, period: 100_000 })
    expect(spec.process.capabilities.effective).toEqual([])
    expect(spec.linux.seccomp?.defaultErrnoRet).toBe(1)
  })

  it.each<[string, Partial<AppLimits>, (s: ReturnType<typeof specOf>) => void]>([
    ['half a CPU', { cpuMillis: 500 }, (s) => expect(s.linux.resources.cpu?.quota).toBe(50_000)],
    [
      'the whole CPU ceiling',
      { cpuMillis: 2000 },
      (s) => expect(s.linux.resources.cpu?.quota).toBe(200_000),
    ],
    [
      'memory at the ceiling',
      { memoryBytes: 1024 ** 3 },
      (s) => expect(s.linux.resources.memory?.limit).toBe(1024 ** 3),
    ],
    ['more tasks', { pids: 512 }, (s) => expect(s.linux.resources.pids?.limit).toBe(512)],
    [
      'an allowed capability',
      { addCapabilities: ['CAP_NET_BIND_SERVICE'] },
      (s) => expect(s.process.capabilities.effective).toEqual(['CAP_NET_BIND_SERVICE']),
    ],
  ])('allows %s and puts it in config.json', async (_what, limits, check) => {
    const { app } = await create(limits)
    check(specOf(app.limits))
  })

  it.each<[string, Partial<AppLimits>, RegExp]>([
    [
      'more CPU than the host allows',
      { cpuMillis: 2001 },
      /limits\.cpuMillis 2001 is over the host's maximum of 2000/,
    ],
    [
      'more memory',
      { memoryBytes: 2 * 1024 ** 3 },
      /limits\.memoryBytes 2147483648 is over the host's maximum of 1073741824/,
    ],
    ['more tasks', { pids: 513 }, /limits\.pids 513 is over the host's maximum of 512/],
    [
      'a capability the host does not allow',
      { addCapabilities: ['CAP_SYS_ADMIN'] },
      /limits\.addCapabilities CAP_SYS_ADMIN not allowed by the host \(allowed: CAP_CHOWN, CAP_NET_BIND_SERVICE\)/,
    ],
    ['NET_RAW', { addCapabilities: ['CAP_CHOWN', 'CAP_NET_RAW'] }, /CAP_NET_RAW not allowed/],
    [
      'no seccomp filter',
      { seccomp: 'unconfined' },
      /limits\.seccomp "unconfined" is not allowed by the host/,
    ],
  ])('refuses %s with APP_OVER_LIMIT naming the limit', async (_what, limits, message) => {
    const err = await create(limits).catch((e: unknown) => e)
    expect(isThawError(err, 'APP_OVER_LIMIT')).toBe(true)
    expect((err as Error).message).toMatch(message)
    expect((err as { fault?: string }).fault).toBe('user')
  })

  it('names every limit an app goes past in one error', async () => {
    const err = await create({ cpuMillis: 4000, pids: 1000 }).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(/limits\.pids 1000 .*; limits\.cpuMillis 4000/)
  })

  it('refuses a change over the limits and keeps the app as it was', async () => {
    const store = await openAppStore(await tmpDir(), { operatorLimits: operator })
    await store.put(
      parseAppInput({ name: 'app', image: '127.0.0.1:5000/a:1', limits: { cpuMillis: 500 } }),
    )
    await expect(store.update('app', { limits: { cpuMillis: 9000 } })).rejects.toThrow(
      /cpuMillis 9000/,
    )
    expect(store.get('app')?.limits.cpuMillis).toBe(500)
  })

  it('lets unconfined through where the operator allows it', async () => {
    const store = await openAppStore(await tmpDir(), {
      operatorLimits: { ...operator, allowUnconfined: true },
    })
    const { app } = await store.put(
      parseAppInput({
        name: 'app',
        image: '127.0.0.1:5000/a:1',
        limits: { seccomp: 'unconfined' },
      }),
    )
    expect(specOf(app.limits).linux.seccomp).toBeUndefined()
  })

  it.each([
    [{ limits: { cpuMillis: 5 } }, /cpuMillis must be at least 10 /], // under a hundredth of a CPU
    [{ limits: { addCapabilities: ['CAP_FLY'] } }, /addCapabilities/], // not a capability
    [{ limits: { seccomp: 'off' } }, /seccomp/], // not a profile name
  ])('rejects a malformed override %j as APP_INVALID', (body, message) => {
    expect(() => parseAppInput({ name: 'app', image: '127.0.0.1:5000/a:1', ...body })).toThrow(
      message,
    )
  })
})

describe('the operator limits file', () => {
  it('keeps the defaults for what it leaves out', () => {
    expect(parseOperatorLimits({ maxCpuMillis: 500 })).toEqual({
      ...defaultOperatorLimits(),
      maxCpuMillis: 500,
    })
    expect(defaultOperatorLimits().addableCapabilities).not.toContain('CAP_NET_RAW')
    expect(defaultOperatorLimits().addableCapabilities).not.toContain('CAP_SYS_ADMIN')
    expect(defaultOperatorLimits().allowUnconfined).toBe(false)
  })

  it('admits the default app limits', async () => {
    const store = await openAppStore(await tmpDir())
    const { app } = await store.put(parseAppInput({ name: 'app', image: '127.0.0.1:5000/a:1' }))
    expect(app.limits).toEqual(DEFAULT_LIMITS)
  })

  it.each([
    [{ maxCpuMillis: 'two' }, /maxCpuMillis/], // not a number
    [{ maxMemoryBytes: 1024 }, /maxMemoryBytes/], // below the smallest node
    [{ addableCapabilities: ['CAP_FLY'] }, /addableCapabilities/], // not a capability
    [{ maxNodes: 3 }, /maxNodes|Unrecognized/], // not an operator limit
    [[], /file|expected object/], // not an object
  ])('refuses %j with OPERATOR_LIMITS_INVALID', (value, message) => {
    let err: unknown
    try {
      parseOperatorLimits(value)
    } catch (e) {
      err = e
    }
    expect(isThawError(err, 'OPERATOR_LIMITS_INVALID')).toBe(true)
    expect((err as Error).message).toMatch(message)
  })
})
