import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { release } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { decodeCapabilityMask } from '../../host/sandbox/capabilities.ts'
import { mountOverlay, unmountAll } from '../../host/sandbox/mounts.ts'
import type { RuntimeSpec } from '../../host/sandbox/runtime-spec.ts'
import type { Sandbox } from '../../host/sandbox/sandbox.ts'
import { runCommand } from '../../host/os/run-command.ts'
import { isThawError } from '../../runtime/errors.ts'
import { onCleanup } from '../support/cleanup.ts'
import {
  lastJson,
  nodeBase,
  runNodeScript,
  sandboxUnavailable,
  testSandbox,
} from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

// Overlayfs over idmapped layers needs Linux 5.19; the probe would say so, this says it first.
const [major = 0, minor = 0] = release().split('.').map(Number)
const why =
  sandboxUnavailable ||
  (major * 100 + minor < 519 ? `Linux ${release()} has no overlayfs over idmapped mounts` : false)
const title = why ? `node privileges (skipped: ${why})` : 'node privileges'

// Each check runs from inside a node and must fail (or hold) the way the node's spec says.
describe.skipIf(why)(title, () => {
  let sandbox: Sandbox
  let probeDir: string
  beforeAll(async () => {
    sandbox = await testSandbox({ userNamespaces: 'required' })
    await nodeBase()
    probeDir = await tmpDir('thaw-syscall-probe-')
    await chmod(probeDir, 0o755) // the node's root is an unprivileged host id
    const source = join(import.meta.dirname, 'fixtures/syscall-probe.c')
    await runCommand('cc', ['-static', '-O2', '-o', join(probeDir, 'probe'), source])
  }, 120_000)

  /** Runs the static syscall probe in a node from the Node.js base (as root unless `user`). */
  const probe = async (user = '0') => {
    const node = await sandbox.prepareNode()
    const proc = await node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['/.probe/probe'], User: user },
      memoryBytes: 64 << 20,
      pids: 32,
      readOnlyBinds: [{ source: probeDir, destination: '/.probe' }],
    })
    const exit = await proc.exited
    expect(exit.reason, JSON.stringify(proc.output())).toBe('exited')
    return lastJson<Record<string, string>>(proc.output().stdout)
  }

  it('denies namespaces, mounts, keyrings, ptrace, raw sockets and device nodes with EPERM, as root', async () => {
    const seen = await probe()
    expect(seen).toEqual({
      unshare_user: 'EPERM', // a new user namespace would pass every capability check inside it
      unshare_mount: 'EPERM',
      clone_newuser: 'EPERM',
      mount: 'EPERM',
      keyctl: 'EPERM', // keyrings are not namespaced
      add_key: 'EPERM',
      ptrace: 'EPERM', // of another process of the same user
      process_vm_readv: 'EPERM',
      packet_socket: 'EPERM', // needs CAP_NET_RAW
      raw_socket: 'EPERM',
      mknod_char: 'EPERM', // needs CAP_MKNOD
      io_uring_setup: 'EPERM',
      personality: 'EPERM', // ADDR_NO_RANDOMIZE
      chroot: 'EPERM',
      setns: 'EPERM',
      // and what any program needs still works
      getpid: 'OK',
      tcp_socket: 'OK',
      fifo: 'OK',
      fork: 'OK',
      thread: 'OK', // glibc's clone3 gets ENOSYS and falls back to clone
    })
  })

  it('holds no capability as root; an app-added one shows in every set', async () => {
    const script = `
      const status = require('fs').readFileSync('/proc/self/status', 'utf8')
      const get = (k) => status.match(new RegExp('^' + k + ':\\\\s+(\\\\S+)', 'm'))[1]
      console.log(JSON.stringify({ uid: get('Uid'), eff: get('CapEff'), prm: get('CapPrm'), bnd: get('CapBnd'), inh: get('CapInh'), amb: get('CapAmb'), seccomp: get('Seccomp') }))`
    const caps = async (options = {}) => {
      const run = await runNodeScript(sandbox, script, {
        imageConfig: { Cmd: ['node', '-e', script], User: '0' },
        ...options,
      })
      const s = lastJson<Record<string, string>>(run.stdout)
      const names = (k: string) => decodeCapabilityMask(s[k]!)
      return {
        uid: s.uid,
        seccomp: s.seccomp,
        eff: names('eff'),
        prm: names('prm'),
        bnd: names('bnd'),
        inh: names('inh'),
        amb: names('amb'),
      }
    }
    expect(await caps()).toEqual({
      uid: '0',
      seccomp: '2',
      eff: [],
      prm: [],
      bnd: [],
      inh: [],
      amb: [],
    })
    const added = await caps({ capabilities: ['CAP_NET_BIND_SERVICE'] })
    expect(added).toMatchObject({
      eff: ['CAP_NET_BIND_SERVICE'],
      prm: ['CAP_NET_BIND_SERVICE'],
      bnd: ['CAP_NET_BIND_SERVICE'],
    })
    expect((await caps({ seccomp: 'unconfined' })).seccomp).toBe('0') // no filter at all
  })

  it('cannot write anywhere under /sys/fs/cgroup, its limits least of all', async () => {
    const script = `
      const fs = require('fs')
      const v1 = fs.existsSync('/sys/fs/cgroup/memory')
      const tries = {
        newFile: () => fs.writeFileSync('/sys/fs/cgroup/thaw-x', '1'),
        newDir: () => fs.mkdirSync(v1 ? '/sys/fs/cgroup/memory/thaw-x' : '/sys/fs/cgroup/thaw-x'),
        memoryLimit: () => fs.writeFileSync(v1 ? '/sys/fs/cgroup/memory/memory.limit_in_bytes' : '/sys/fs/cgroup/memory.max', '999999999'),
        cpuQuota: () => fs.writeFileSync(v1 ? '/sys/fs/cgroup/cpu/cpu.cfs_quota_us' : '/sys/fs/cgroup/cpu.max', '-1'),
        pidsLimit: () => fs.writeFileSync(v1 ? '/sys/fs/cgroup/pids/pids.max' : '/sys/fs/cgroup/pids.max', 'max'),
      }
      const out = {}
      for (const [k, f] of Object.entries(tries)) { try { f(); out[k] = 'written' } catch (e) { out[k] = e.code } }
      console.log(JSON.stringify(out))`
    const run = await runNodeScript(sandbox, script, {
      imageConfig: { Cmd: ['node', '-e', script], User: '0' },
    })
    expect(lastJson(run.stdout)).toEqual({
      newFile: 'EROFS',
      newDir: 'EROFS',
      memoryLimit: 'EROFS',
      cpuQuota: 'EROFS',
      pidsLimit: 'EROFS',
    })
  })

  it('runs under its CPU quota: the cgroup the node sees holds cpuMillis per 100 ms', async () => {
    const script = `
      const fs = require('fs')
      const read = (p) => fs.readFileSync(p, 'utf8').trim()
      console.log(JSON.stringify(fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')
        ? { quota: read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), period: read('/sys/fs/cgroup/cpu/cpu.cfs_period_us') }
        : { quota: read('/sys/fs/cgroup/cpu.max').split(' ')[0], period: read('/sys/fs/cgroup/cpu.max').split(' ')[1] }))`
    const quarter = await runNodeScript(sandbox, script, { cpuMillis: 250 })
    expect(lastJson(quarter.stdout)).toEqual({ quota: '25000', period: '100000' })
    const standard = await runNodeScript(sandbox, script) // the default: one CPU
    expect(lastJson(standard.stdout)).toEqual({ quota: '100000', period: '100000' })
  })

  it('maps its root to an unprivileged host id of its own, and still owns the image files', async () => {
    const script = `
      const fs = require('fs')
      fs.writeFileSync('/etc/thaw-written', 'mine')
      fs.writeFileSync('/tmp/thaw-written', 'mine')
      console.log(JSON.stringify({ uidMap: fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\\s+/), owner: fs.statSync('/etc/passwd').uid }))`
    const run = await runNodeScript(sandbox, script, {
      imageConfig: { Cmd: ['node', '-e', script], User: '0' },
    })
    const ns = run.node.userNamespace
    if (!ns?.enabled) throw new Error(`no user namespace: ${JSON.stringify(ns)}`)
    const hostId = ns.range.hostId
    expect(hostId).toBeGreaterThanOrEqual(2 ** 30)
    expect(lastJson(run.stdout)).toEqual({ uidMap: ['0', String(hostId), '65536'], owner: 0 })
    // From the host, what the node wrote belongs to its host id, not to root.
    const upper = join(run.node.dir, 'fs/upper')
    expect((await stat(join(upper, 'etc/thaw-written'))).uid).toBe(hostId)
    expect((await stat(join(upper, 'tmp/thaw-written'))).gid).toBe(hostId)
    // Two nodes never share host ids.
    const other = await runNodeScript(sandbox, 'console.log(1)')
    const otherNs = other.node.userNamespace
    expect(otherNs?.enabled && otherNs.range.hostId).not.toBe(hostId)
  })

  it('writes all of it in config.json, readable by root only', async () => {
    const run = await runNodeScript(sandbox, 'console.log(1)', { cpuMillis: 500 })
    // The node is done; its directory stays until it is destroyed.
    const file = join(run.node.dir, 'config.json')
    const spec = JSON.parse(await readFile(file, 'utf8')) as RuntimeSpec
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(spec.linux.seccomp).toMatchObject({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
    })
    expect(spec.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 })
    expect(spec.process.capabilities).toMatchObject({ bounding: [], effective: [] })
    expect(spec.linux.readonlyPaths).toContain('/sys/fs/cgroup')
    expect(spec.linux.namespaces[0]).toMatchObject({ type: 'user' })
    expect(spec.linux.uidMappings?.[0]).toMatchObject({ containerID: 0, size: 65_536 })
  })

  it('runs without a user namespace, saying why, where the image cannot be idmapped (auto)', async () => {
    // An overlay as the image root: overlayfs can never be idmapped (thaw's FUSE mounts can, since
    // they offer FUSE_ALLOW_IDMAP; host-fuse-descriptor.test.ts checks a node over one).
    const dir = await tmpDir('thaw-overlay-lower-')
    const dirs = {
      lower: (await nodeBase()).rootfs,
      upper: join(dir, 'u'),
      work: join(dir, 'w'),
      target: join(dir, 'm'),
    }
    await Promise.all([dirs.upper, dirs.work, dirs.target].map((d) => mkdir(d)))
    await mountOverlay(dirs)
    onCleanup('servers', () => unmountAll(dirs.target))
    const script = `console.log(JSON.stringify(require('fs').readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\\s+/)))`
    const auto = await testSandbox({ userNamespaces: 'auto' })
    const run = await runNodeScript(auto, script, { lowerDir: dirs.target })
    expect(run.node.userNamespace).toMatchObject({
      enabled: false,
      reason: expect.stringMatching(/cannot be idmapped/),
    })
    expect(lastJson(run.stdout)).toEqual(['0', '0', '4294967295'])
    // The rest of the confinement holds without it.
    expect(
      JSON.parse(await readFile(join(run.node.dir, 'config.json'), 'utf8')).linux.seccomp,
    ).toBeDefined()
    // Where a user namespace is required, such a node does not start.
    const node = await sandbox.prepareNode()
    const failed = await node
      .specialize({
        lowerDir: dirs.target,
        imageConfig: { Cmd: ['node', '-e', '1'] },
        memoryBytes: 64 << 20,
        pids: 32,
      })
      .catch((e: unknown) => e)
    expect(isThawError(failed, 'USERNS_UNAVAILABLE')).toBe(true)
    await Promise.all([run.node.destroy(), node.destroy()])
    await unmountAll(dirs.target)
  })
})
