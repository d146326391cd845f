import { once } from 'node:events'
import { chmod, readdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Sandbox } from '../../host/sandbox/sandbox.ts'
import { isThawError } from '../../runtime/errors.ts'
import {
  lastJson,
  nodeBase,
  runNodeScript,
  sandboxUnavailable,
  testSandbox,
  waitForOutput,
} from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

const title = sandboxUnavailable ? `node sandbox (skipped: ${sandboxUnavailable})` : 'node sandbox'

describe.skipIf(sandboxUnavailable)(title, () => {
  let sandbox: Sandbox
  let workerDir: string
  beforeAll(async () => {
    workerDir = await tmpDir('thaw-worker-')
    await chmod(workerDir, 0o755) // nodes may run as any user
    await writeFile(join(workerDir, 'main.js'), 'console.log("worker " + process.argv[2])\n')
    sandbox = await testSandbox({ workerDir })
    await nodeBase()
  })

  it('runs node -e inside a node from the Node.js base and reports its output and status', async () => {
    const run = await runNodeScript(
      sandbox,
      'console.log("hello from " + process.version); process.exit(3)',
    )
    expect(run.stdout).toBe(`hello from ${process.version}\n`)
    expect(run.exit).toMatchObject({ reason: 'exited', code: 3, signal: null, oomKills: 0 })
  })

  it('merges env: a default PATH, then the image Env, then the app settings win', async () => {
    const run = await runNodeScript(sandbox, 'console.log(JSON.stringify(process.env))', {
      imageConfig: {
        Env: ['FROM_IMAGE=1', 'SHARED=image', 'PATH=/usr/bin:/bin'],
        Cmd: ['node', '-e', 'console.log(JSON.stringify(process.env))'],
      },
      env: { SHARED: 'app', FROM_APP: 'yes=with=equals' },
    })
    const env = lastJson(run.stdout)
    expect(env).toMatchObject({
      FROM_IMAGE: '1',
      SHARED: 'app',
      FROM_APP: 'yes=with=equals',
      PATH: '/usr/bin:/bin',
      HOME: '/root',
    })
    const noPath = await runNodeScript(sandbox, 'console.log(JSON.stringify(process.env))')
    expect(lastJson(noPath.stdout).PATH).toBe(
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    )
  })

  it('runs as the image user (app → uid 1000, its home) in the image working directory', async () => {
    const script =
      'console.log(JSON.stringify({uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(), home: process.env.HOME}))'
    const asApp = await runNodeScript(sandbox, script, {
      imageConfig: { User: 'app', WorkingDir: '/home/app', Cmd: ['node', '-e', script] },
    })
    expect(lastJson(asApp.stdout)).toEqual({
      uid: 1000,
      gid: 1000,
      cwd: '/home/app',
      home: '/home/app',
    })
    const numeric = await runNodeScript(sandbox, script, {
      imageConfig: { User: '4242:65534', WorkingDir: '/tmp', Cmd: ['node', '-e', script] },
    })
    expect(lastJson(numeric.stdout)).toEqual({ uid: 4242, gid: 65534, cwd: '/tmp', home: '/' })
    const root = await runNodeScript(sandbox, script)
    expect(lastJson(root.stdout)).toEqual({ uid: 0, gid: 0, cwd: '/', home: '/root' })
  })

  it('starts shell entrypoints through the base image /bin/sh, with Entrypoint before Cmd', async () => {
    const run = await runNodeScript(sandbox, '', {
      imageConfig: {
        Entrypoint: ['/bin/sh', '-c'],
        Cmd: ['echo "sh says $0 $HOSTNAME"; exec node -e "console.log(1+1)"'],
      },
    })
    expect(run.exit.reason).toBe('exited')
    expect(run.stdout).toMatch(/^sh says \/bin\/sh thaw-\w+-\w+\n2\n$/)
  })

  it('serves HTTP from inside the node to the host over the veth address', async () => {
    const node = await sandbox.prepareNode()
    const script = `require('http').createServer((q, s) => s.end('hi ' + q.url)).listen(8080, () => console.log('listening'))`
    const proc = await node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { User: 'app', Cmd: ['node', '-e', script] },
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    await waitForOutput(proc, /listening/)
    const res = await fetch(`http://${node.ip}:8080/ping`)
    expect(await res.text()).toBe('hi /ping')
    expect((await proc.usage()).memoryBytes).toBeGreaterThan(1024 * 1024)
    await node.destroy()
    expect(await proc.exited).toMatchObject({ reason: 'stopped', signal: 'SIGKILL' })
  })

  it('mounts the worker read-only at /.thaw/worker and a writable /.thaw/run the host reaches', async () => {
    const node = await sandbox.prepareNode()
    const script = `
      const fs = require('fs')
      const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'written' } catch (e) { return e.code } }
      const result = { thaw: fs.readdirSync('/.thaw').sort(), workerWrite: tryWrite('/.thaw/worker/x'), thawWrite: tryWrite('/.thaw/x') }
      require('net').createServer((c) => c.end(JSON.stringify(result))).listen('/.thaw/run/control.sock', () => console.log('ready'))
    `
    const proc = await node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { User: 'app' },
      args: ['node', '/.thaw/worker/main.js', 'started'],
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    await proc.exited
    expect(proc.output().stdout).toBe('worker started\n')
    await node.destroy()

    const second = await sandbox.prepareNode()
    const server = await second.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { User: 'app', Cmd: ['node', '-e', script] },
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    await waitForOutput(server, /ready/)
    expect(await readdir(second.runDir)).toEqual(['control.sock'])
    const socket = connect(join(second.runDir, 'control.sock'))
    let answer = ''
    socket.on('data', (c) => (answer += c))
    await once(socket, 'end')
    expect(JSON.parse(answer)).toEqual({
      thaw: ['run', 'worker'],
      workerWrite: 'EROFS',
      thawWrite: 'EROFS',
    })
  })

  it('reports a crash: a node killed by a signal it did not ignore', async () => {
    const run = await runNodeScript(sandbox, 'process.abort()')
    expect(run.exit.reason).toBe('signaled')
    expect(run.exit.signal).toMatch(/^SIG(ABRT|SEGV|ILL|TRAP)$/)
  })

  it('stops a node: SIGTERM first, SIGKILL when PID 1 has no handler and the grace ends', async () => {
    const graceful = await sandbox.prepareNode()
    const handles = await graceful.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: {
        Cmd: [
          'node',
          '-e',
          `process.on('SIGTERM', () => { console.log('bye'); process.exit(0) }); setInterval(() => {}, 1000); console.log('up')`,
        ],
      },
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    await waitForOutput(handles, /up/)
    expect(await handles.stop(10_000)).toMatchObject({ reason: 'stopped', code: 0, signal: null })
    expect(handles.output().stdout).toBe('up\nbye\n')

    const stubborn = await sandbox.prepareNode()
    const ignores = await stubborn.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node', '-e', `setInterval(() => {}, 1000); console.log('up')`] },
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    await waitForOutput(ignores, /up/)
    expect(await ignores.stop(300)).toMatchObject({ reason: 'stopped', signal: 'SIGKILL' })
  })

  it.each([
    // a user name the image's /etc/passwd does not have
    [{ User: 'nobody-here', Cmd: ['node'] }, 'IMAGE_USER_UNKNOWN'],
    // a group name the image's /etc/group does not have
    [{ User: 'app:wheel', Cmd: ['node'] }, 'IMAGE_GROUP_UNKNOWN'],
    // no command at all
    [{ Cmd: [] }, 'IMAGE_NO_COMMAND'],
    // an entrypoint that is not in the image
    [{ Entrypoint: ['/usr/bin/python3'], Cmd: ['-V'] }, 'NODE_START_FAILED'],
  ])(
    'refuses to start %j with %s, a user fault, and leaves a node destroy cleans',
    async (imageConfig, code) => {
      const node = await sandbox.prepareNode()
      const err = await node
        .specialize({
          lowerDir: (await nodeBase()).rootfs,
          imageConfig,
          memoryBytes: 128 << 20,
          pids: 32,
        })
        .catch((e: unknown) => e)
      expect(isThawError(err, code), String(err)).toBe(true)
      expect((err as { fault: string }).fault).toBe('user')
      expect(node.state).toBe('failed')
      await node.destroy()
      await expect(readdir(node.dir)).rejects.toThrow(/ENOENT/)
    },
  )

  it('specializes a node once only', async () => {
    const run = await runNodeScript(sandbox, '0')
    const again = run.node.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node'] },
      memoryBytes: 128 << 20,
      pids: 32,
    })
    await expect(again).rejects.toMatchObject({ code: 'NODE_NOT_WARM' })
  })
})
