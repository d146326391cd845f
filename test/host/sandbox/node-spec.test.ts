import { describe, expect, it } from 'vitest'
import {
  NODE_CAPABILITIES,
  NODE_PATHS,
  nodeSpecTemplate,
  specializeSpec,
} from '../../../host/sandbox/node-spec.ts'

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

  it('gives root the default capabilities and any other user none in effect', () => {
    const app = specializeSpec(template, processSpec).process.capabilities
    expect(app).toEqual({
      bounding: NODE_CAPABILITIES,
      effective: [],
      permitted: [],
      inheritable: [],
      ambient: [],
    })
    const root = specializeSpec(template, {
      ...processSpec,
      user: { uid: 0, gid: 0, additionalGids: [] },
    }).process.capabilities
    expect(root.effective).toEqual(NODE_CAPABILITIES)
    expect(NODE_CAPABILITIES).not.toContain('CAP_SYS_ADMIN')
    expect(NODE_CAPABILITIES).not.toContain('CAP_NET_RAW')
  })
})
