import { describe, expect, it } from 'vitest'
import { NODE_CAPABILITIES } from '../../../host/sandbox/capabilities.ts'
import { NODE_PATHS, nodeSpecTemplate, specializeSpec } from '../../../host/sandbox/node-spec.ts'

const template = nodeSpecTemplate({
  rootfs: '/state/abc/n0/fs/root',
  netnsPath: '/run/netns/thaw-abc-0',
  cgroupsPath: 'thaw-abc-0',
  hostname: 'thaw-abc-0',
  thawDir: '/state/abc/n0/fs/thaw',
  runDir: '/state/abc/n0/fs/run',
  workerDir: '/opt/worker',
  maxOpenFiles: 4096,
})

const processSpec = {
  args: ['node', 'x.js'],
  env: ['PATH=/bin'],
  cwd: '/app',
  user: { uid: 1000, gid: 1000, additionalGids: [29] },
  memoryBytes: 128 << 20,
  limitSwap: true,
  pids: 64,
  cpuMillis: 1000,
  capabilities: NODE_CAPABILITIES,
  seccomp: 'default' as const,
}

describe('node config.json', () => {
  it('joins the prepared network namespace by path and creates the other namespaces', () => {
    expect(template.linux.namespaces).toEqual([
      { type: 'pid' },
      { type: 'ipc' },
      { type: 'uts' },
      { type: 'mount' },
      { type: 'cgroup' },
      { type: 'network', path: '/run/netns/thaw-abc-0' },
    ])
    expect(template.linux.cgroupsPath).toBe('thaw-abc-0')
    expect(template.process.noNewPrivileges).toBe(true)
    expect(template.linux.maskedPaths).toContain('/proc/kcore')
    expect(template.linux.readonlyPaths).toContain('/proc/sys')
  })

  it('makes /sys/fs/cgroup read-only (runc mounts a writable tmpfs there on cgroup v1)', () => {
    expect(template.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options).toContain('ro')
    expect(template.linux.readonlyPaths).toContain('/sys/fs/cgroup')
  })

  it('binds /.thaw and /.thaw/worker read-only and /.thaw/run read-write, in that order', () => {
    const thaw = template.mounts.filter((m) => m.destination.startsWith('/.thaw'))
    expect(
      thaw.map((m) => [m.destination, m.source, m.options?.includes('ro') ? 'ro' : 'rw']),
    ).toEqual([
      [NODE_PATHS.thaw, '/state/abc/n0/fs/thaw', 'ro'],
      [NODE_PATHS.worker, '/opt/worker', 'ro'],
      [NODE_PATHS.run, '/state/abc/n0/fs/run', 'rw'],
    ])
  })

  it('adds the process, limits and read-only binds without changing the template', () => {
    const before = JSON.stringify(template)
    const spec = specializeSpec(template, {
      ...processSpec,
      readOnlyBinds: [{ source: '/h', destination: '/data' }],
    })
    expect(JSON.stringify(template)).toBe(before)
    expect(spec.process).toMatchObject({
      args: ['node', 'x.js'],
      env: ['PATH=/bin'],
      cwd: '/app',
      user: processSpec.user,
    })
    expect(spec.linux.resources).toMatchObject({
      memory: { limit: 128 << 20, swap: 128 << 20 },
      pids: { limit: 64 },
    })
    expect(spec.mounts.at(-1)).toEqual({
      destination: '/data',
      type: 'bind',
      source: '/h',
      options: ['rbind', 'ro', 'nosuid', 'nodev'],
    })
    expect(
      specializeSpec(template, { ...processSpec, limitSwap: false }).linux.resources.memory,
    ).toEqual({ limit: 128 << 20 })
  })

  it('sets the CPU quota per 100 ms period from cpuMillis', () => {
    const cpu = (cpuMillis: number) =>
      specializeSpec(template, { ...processSpec, cpuMillis }).linux.resources.cpu
    expect(cpu(1000)).toEqual({ quota: 100_000, period: 100_000 })
    expect(cpu(250)).toEqual({ quota: 25_000, period: 100_000 })
    expect(cpu(2500)).toEqual({ quota: 250_000, period: 100_000 })
  })

  it('filters syscalls with the default profile unless the node is unconfined', () => {
    const confined = specializeSpec(template, processSpec).linux.seccomp
    expect(confined).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 })
    const open = specializeSpec(template, { ...processSpec, seccomp: 'unconfined' })
    expect(open.linux.seccomp).toBeUndefined()
  })

  it('has no user namespace unless given one; then joins it first, with its id mappings', () => {
    expect(specializeSpec(template, processSpec).linux.uidMappings).toBeUndefined()
    const range = { hostId: 1_073_807_360, size: 65_536 }
    const spec = specializeSpec(template, {
      ...processSpec,
      userNamespace: { path: '/state/abc/n0/userns', range },
    })
    expect(spec.linux.namespaces[0]).toEqual({ type: 'user', path: '/state/abc/n0/userns' })
    expect(spec.linux.namespaces.slice(1)).toEqual(template.linux.namespaces)
    const mapping = [{ containerID: 0, hostID: 1_073_807_360, size: 65_536 }]
    expect(spec.linux.uidMappings).toEqual(mapping)
    expect(spec.linux.gidMappings).toEqual(mapping)
  })

  it('gives root the node capabilities and any other user none in effect', () => {
    const added = ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'] as const
    const app = specializeSpec(template, { ...processSpec, capabilities: added }).process
    expect(app.capabilities).toEqual({
      bounding: added,
      effective: [],
      permitted: [],
      inheritable: [],
      ambient: [],
    })
    const root = specializeSpec(template, {
      ...processSpec,
      capabilities: added,
      user: { uid: 0, gid: 0, additionalGids: [] },
    }).process.capabilities
    expect(root.effective).toEqual(added)
    expect(root.permitted).toEqual(added)
  })

  it('holds no capability by default (the sample apps need none)', () => {
    expect(NODE_CAPABILITIES).toEqual([])
    expect(template.process.capabilities.bounding).toEqual([])
  })
})
