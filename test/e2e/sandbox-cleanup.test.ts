import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { detectOciRuntime } from '../../host/sandbox/detect-runtime.ts'
import { mountsUnder } from '../../host/sandbox/mounts.ts'
import { createSandbox, type Sandbox } from '../../host/sandbox/sandbox.ts'
import { isThawError } from '../../runtime/errors.ts'
import { isAlive, run, startProcess } from '../support/processes.ts'
import { nodeBase, runNodeScript, sandboxUnavailable, testSandbox } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

const title = sandboxUnavailable ? `node cleanup (skipped: ${sandboxUnavailable})` : 'node cleanup'
const FIXTURE = resolve(import.meta.dirname, 'fixtures/sandbox-crash-child.ts')
const LEASES = '/run/thaw/subnets'

describe.skipIf(sandboxUnavailable)(title, () => {
  let sandbox: Sandbox
  beforeAll(async () => {
    sandbox = await testSandbox()
    await nodeBase()
  })

  it('removes what a crashed host left behind: containers, mounts, netns, veths, firewall, leases, state', async () => {
    const stateDir = await tmpDir('thaw-sandbox-crash-')
    const host = startProcess(process.execPath, [
      '--import',
      'tsx',
      FIXTURE,
      stateDir,
      (await nodeBase()).rootfs,
    ])
    const [line] = await host.waitFor(/^\{.*\}$/m, 60_000)
    const made = JSON.parse(line) as {
      instanceId: string
      nodes: { dir: string; containerId: string }[]
      containerPid: number
    }
    const id = made.instanceId
    const left = () => leftovers(stateDir, id, sandbox.runtime.name)
    const before = await left()
    expect(before.netns).toHaveLength(2)
    expect(before.veths).toHaveLength(2)
    expect(before.mounts.length).toBeGreaterThanOrEqual(3) // two tmpfs, one overlay
    expect(before.containers).toEqual([made.nodes[1]!.containerId])
    expect(before.firewall).toBe(true)
    expect(before.leases).toHaveLength(2)
    await host.kill() // SIGKILL: no cleanup code runs
    expect(isAlive(made.containerPid)).toBe(true) // the node outlives its host

    const next = await createSandbox({ stateDir })
    try {
      expect(next.leftovers?.instances).toContain(id)
      expect(next.leftovers?.containers).toEqual([made.nodes[1]!.containerId])
      expect(next.leftovers?.errors).toEqual([])
      expect(await left()).toEqual({
        netns: [],
        veths: [],
        mounts: [],
        containers: [],
        firewall: false,
        leases: [],
        stateDir: false,
      })
      for (let i = 0; i < 100 && isAlive(made.containerPid); i++) await sleep(50)
      expect(isAlive(made.containerPid)).toBe(false)
    } finally {
      await next.close()
    }
  })

  it('destroys idempotently: twice at once, a warm node, a node whose process crashed', async () => {
    const warm = await sandbox.prepareNode()
    await Promise.all([warm.destroy(), warm.destroy()])
    await warm.destroy()
    expect(existsSync(warm.dir)).toBe(false)
    expect(existsSync(`/run/netns/${warm.containerId}`)).toBe(false)

    const crashed = await runNodeScript(sandbox, 'process.abort()')
    expect(crashed.exit.reason).toBe('signaled')
    await crashed.node.destroy()
    await crashed.node.destroy()
    expect(existsSync(crashed.node.dir)).toBe(false)
    expect(await mountsUnder(crashed.node.dir)).toEqual([])
    expect(sandbox.nodes()).toEqual([])
  })

  it('destroying a node mid-specialize leaves nothing running', async () => {
    const node = await sandbox.prepareNode()
    const starting = node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node', '-e', 'setInterval(() => {}, 1000)'] },
      memoryBytes: 128 << 20,
      pids: 32,
    })
    const outcome = starting.then(
      async (proc) => (await proc.exited).reason,
      (err: unknown) => (isThawError(err) ? err.code : String(err)),
    )
    await node.destroy()
    expect(['stopped', 'NODE_DESTROYED']).toContain(await outcome)
    expect(existsSync(node.dir)).toBe(false)
    expect(await containerIds(sandbox.runtime.root, node.containerId)).toEqual([])
  })

  it('picks a working OCI runtime, and names each one that failed when none works', async () => {
    expect(['runc', 'crun']).toContain(sandbox.runtime.name)
    const stateDir = await tmpDir('thaw-runtime-')
    const err = await detectOciRuntime({
      stateDir,
      force: 'runc',
      paths: { runc: '/nonexistent/runc' },
    }).catch((e: unknown) => e)
    expect(isThawError(err, 'OCI_RUNTIME_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toBe('no working OCI runtime (tried runc): runc: not installed')
    // crun refuses this machine's hybrid cgroups; elsewhere it may work. Either way the answer is clear.
    const crun = await detectOciRuntime({ stateDir, force: 'crun' }).then(
      (r) => `works: ${r.name}`,
      (e: unknown) => (e as Error).message,
    )
    expect(crun).toMatch(/^(works: crun|no working OCI runtime \(tried crun\): crun: .+)$/)
    console.log(`crun on this machine: ${crun}`)
  })
})

async function leftovers(stateDir: string, id: string, runtime: string) {
  const leases = []
  for (const name of await readdir(LEASES).catch(() => [])) {
    if ((await readFile(join(LEASES, name), 'utf8').catch(() => '')) === id) leases.push(name)
  }
  const tables = (await run('nft', ['list', 'tables', 'inet'])).stdout
  return {
    netns: (await readdir('/run/netns').catch(() => [])).filter((n) => n.startsWith(`thaw-${id}-`)),
    veths: (await readdir('/sys/class/net')).filter((n) => n.startsWith(`tv${id}`)),
    mounts: await mountsUnder(join(stateDir, id)),
    containers: await containerIds(join(stateDir, runtime), `thaw-${id}-`),
    firewall: tables.includes(`thaw_${id}`),
    leases,
    stateDir: existsSync(join(stateDir, id)),
  }
}

async function containerIds(root: string, prefix: string): Promise<string[]> {
  return (await readdir(root).catch(() => [])).filter((n) => n.startsWith(prefix))
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}
