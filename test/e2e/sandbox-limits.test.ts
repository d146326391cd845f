import { beforeAll, describe, expect, it } from 'vitest'
import type { Sandbox } from '../../host/sandbox/sandbox.ts'
import { run } from '../support/processes.ts'
import {
  lastJson,
  nodeBase,
  runNodeScript,
  sandboxUnavailable,
  testSandbox,
} from '../support/sandbox.ts'

const title = sandboxUnavailable ? `node limits (skipped: ${sandboxUnavailable})` : 'node limits'

describe.skipIf(sandboxUnavailable)(title, () => {
  let sandbox: Sandbox
  beforeAll(async () => {
    sandbox = await testSandbox()
    await nodeBase()
  })

  it('kills a node that allocates past its memory limit and says oom', async () => {
    // Buffers live outside V8's heap and Buffer.alloc(n, 1) touches every page: only the
    // memory cgroup can stop this.
    const script = `
      const kept = []
      for (let i = 0; ; i++) {
        kept.push(Buffer.alloc(1 << 20, 1))
        if (i % 16 === 0) console.log('allocated ' + i + ' MiB')
      }`
    const result = await runNodeScript(sandbox, script, { memoryBytes: 96 * 1024 * 1024 })
    expect(result.exit).toMatchObject({ reason: 'oom', signal: 'SIGKILL', code: null })
    expect(result.exit.oomKills).toBeGreaterThanOrEqual(1)
    expect(result.exit.message).toMatch(/OOM/)
    const allocated = [...result.stdout.matchAll(/allocated (\d+) MiB/g)].map((m) => Number(m[1]))
    expect(Math.max(...allocated)).toBeLessThan(96)
  })

  it('stops a fork loop at the pids limit without harming the host', async () => {
    // Spawns shells that wait on stdin until a fork fails. No async fs here: libuv's thread
    // pool would need threads, which the limit counts too.
    const script = `
      const { spawn } = require('child_process')
      const children = []
      const next = () => {
        const child = spawn('/bin/sh', [], { stdio: ['pipe', 'ignore', 'ignore'] })
        child.on('error', (e) => {
          console.log(JSON.stringify({ started: children.length, error: e.code }))
          for (const c of children) c.kill('SIGKILL')
          process.exit(0)
        })
        child.on('spawn', () => { children.push(child); if (children.length < 1000) next() })
      }
      next()`
    const result = await runNodeScript(sandbox, script, { pids: 32 })
    const outcome = lastJson<{ started: number; error: string }>(result.stdout)
    expect(outcome.error).toBe('EAGAIN')
    expect(outcome.started).toBeGreaterThan(0)
    expect(outcome.started).toBeLessThan(32)
    expect(result.exit).toMatchObject({ reason: 'exited', code: 0 })
    expect(result.exit.pidsLimitHits).toBeGreaterThan(0)
    // The host still forks.
    expect((await run('/bin/sh', ['-c', 'echo host fine'])).stdout).toBe('host fine\n')
  })

  it('reports usage of a running node from its cgroups', async () => {
    const node = await sandbox.prepareNode()
    const proc = await node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node', '-e', 'setInterval(() => {}, 1000); console.log("up")'] },
      memoryBytes: 128 << 20,
      pids: 64,
    })
    for (let i = 0; i < 200 && proc.output().stdout === ''; i++)
      await new Promise((r) => setTimeout(r, 20))
    const usage = await proc.usage()
    expect(usage.memoryBytes).toBeGreaterThan(4 << 20)
    expect(usage.memoryBytes).toBeLessThan(128 << 20)
    expect(usage.pids).toBeGreaterThanOrEqual(1) // node's main thread and its helper threads
    expect(usage.pids).toBeLessThan(64)
    expect(usage.oomKills).toBe(0)
  })
})
