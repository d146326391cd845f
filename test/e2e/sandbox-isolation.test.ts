import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Sandbox } from '../../host/sandbox/sandbox.ts'
import { startProcess } from '../support/processes.ts'
import {
  lastJson,
  nodeBase,
  runNodeScript,
  sandboxUnavailable,
  testSandbox,
  waitForOutput,
} from '../support/sandbox.ts'

const title = sandboxUnavailable
  ? `node isolation (skipped: ${sandboxUnavailable})`
  : 'node isolation'

// Each check runs from inside a node and must fail the way isolation says it should.
describe.skipIf(sandboxUnavailable)(title, () => {
  let sandbox: Sandbox
  const marker = `thaw-marker-${randomBytes(6).toString('hex')}`
  const hostFile = `/tmp/${marker}`
  // Scripts name the marker in base64, so a node's own command line never contains it.
  const markerExpr = `Buffer.from('${Buffer.from(marker).toString('base64')}', 'base64').toString()`
  beforeAll(async () => {
    sandbox = await testSandbox()
    await nodeBase()
    await writeFile(hostFile, 'host secret\n')
  })
  afterAll(() => rm(hostFile, { force: true }))

  it('cannot read host files: a marker in the host /tmp and in the sandbox state dir', async () => {
    const stateFile = join(sandbox.stateDir, `${marker}.txt`)
    await writeFile(stateFile, 'state secret\n')
    const script = `
      const fs = require('fs')
      const read = (p) => { try { return fs.readFileSync(p, 'utf8') } catch (e) { return e.code } }
      console.log(JSON.stringify({
        tmp: read(${JSON.stringify(hostFile)}),
        state: read(${JSON.stringify(stateFile)}),
        viaInit: read('/proc/1/root' + ${JSON.stringify(hostFile)}),
        hostname: read('/etc/hostname'),
        thaw: fs.readdirSync('/.thaw').sort(),
      }))`
    const run = await runNodeScript(sandbox, script)
    expect(lastJson(run.stdout)).toEqual({
      tmp: 'ENOENT',
      state: 'ENOENT',
      viaInit: 'ENOENT',
      hostname: 'ENOENT',
      thaw: ['run', 'worker'],
    })
  })

  it('cannot see host processes: /proc lists only the node, a host marker process is invisible', async () => {
    const hostMarker = startProcess(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker])
    const script = `
      const fs = require('fs')
      const pids = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))
      const cmdlines = pids.map((p) => { try { return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8') } catch { return '' } })
      let signal = 'sent'
      try { process.kill(${hostMarker.pid}, 0) } catch (e) { signal = e.code }
      console.log(JSON.stringify({ pids, sawMarker: cmdlines.some((c) => c.includes(${markerExpr})), signal }))`
    const run = await runNodeScript(sandbox, script)
    const seen = lastJson<{ pids: string[]; sawMarker: boolean; signal: string }>(run.stdout)
    expect(seen.pids).toEqual(['1'])
    expect(seen.sawMarker).toBe(false)
    expect(seen.signal).toBe('ESRCH')
    expect(hostMarker.child.exitCode).toBe(null)
    await hostMarker.stop()
  })

  it("cannot see or signal another node's processes", async () => {
    const other = await sandbox.prepareNode()
    const victim = await other.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node', '-e', 'setInterval(() => {}, 1000)', marker] },
      memoryBytes: 256 << 20,
      pids: 64,
    })
    const script = `
      const fs = require('fs')
      const pids = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))
      const sawMarker = pids.some((p) => { try { return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').includes(${markerExpr}) } catch { return false } })
      let kill = 'sent'
      try { process.kill(${victim.pid}, 'SIGKILL') } catch (e) { kill = e.code }
      console.log(JSON.stringify({ sawMarker, kill }))`
    const run = await runNodeScript(sandbox, script)
    expect(lastJson(run.stdout)).toEqual({ sawMarker: false, kill: 'ESRCH' })
    expect(() => process.kill(victim.pid, 0)).not.toThrow()
    await other.destroy()
  })

  it('cannot write to the image: writes land in the node upper; the lower and other nodes never see them', async () => {
    const lower = (await nodeBase()).rootfs
    const passwdBefore = await readFile(join(lower, 'etc/passwd'), 'utf8')
    const script = `
      const fs = require('fs')
      fs.writeFileSync('/etc/${marker}', 'written')
      fs.appendFileSync('/etc/passwd', 'intruder:x:0:0::/:/bin/sh\\n')
      fs.unlinkSync('/usr/bin/env')
      console.log(JSON.stringify({ env: fs.existsSync('/usr/bin/env'), mine: fs.readFileSync('/etc/${marker}', 'utf8') }))`
    const writer = await runNodeScript(sandbox, script)
    expect(lastJson(writer.stdout)).toEqual({ env: false, mine: 'written' })
    expect(await readFile(join(writer.node.dir, 'fs/upper/etc', marker), 'utf8')).toBe('written')

    await expect(stat(join(lower, 'etc', marker))).rejects.toThrow(/ENOENT/)
    expect(await readFile(join(lower, 'etc/passwd'), 'utf8')).toBe(passwdBefore)
    expect((await stat(join(lower, 'usr/bin/env'))).isFile()).toBe(true)

    const reader = await runNodeScript(
      sandbox,
      `
      const fs = require('fs')
      console.log(JSON.stringify({ marker: fs.existsSync('/etc/${marker}'), env: fs.existsSync('/usr/bin/env'), intruder: fs.readFileSync('/etc/passwd', 'utf8').includes('intruder') }))`,
    )
    expect(lastJson(reader.stdout)).toEqual({ marker: false, env: true, intruder: false })
  })

  it("cannot reach host services: not the host's 127.0.0.1, not 0.0.0.0 through the veth, not another node", async () => {
    const servers: Server[] = []
    const listen = async (host: string) => {
      const server = createServer((c) => c.end('host answered'))
      server.listen(0, host)
      await once(server, 'listening')
      servers.push(server)
      return (server.address() as { port: number }).port
    }
    const loopbackPort = await listen('127.0.0.1')
    const anyPort = await listen('0.0.0.0')
    const other = await sandbox.prepareNode()
    const otherServer = await other.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: {
        Cmd: [
          'node',
          '-e',
          `require('net').createServer((c) => c.end('node answered')).listen(9000, () => console.log('up'))`,
        ],
      },
      memoryBytes: 256 << 20,
      pids: 64,
    })
    await waitForOutput(otherServer, /up/)
    // The host can reach its own services and the other node; the probe node must not.
    const probe = await sandbox.prepareNode()
    const targets = {
      hostLoopback: ['127.0.0.1', loopbackPort],
      hostAnyViaVeth: [probe.hostIp, anyPort],
      hostLoopbackViaVeth: [probe.hostIp, loopbackPort],
      otherNode: [other.ip, 9000],
      otherNodeHostSide: [other.hostIp, anyPort],
    } as const
    const script = `
      const net = require('net')
      const targets = ${JSON.stringify(targets)}
      const attempt = ([host, port]) => new Promise((resolve) => {
        const s = net.connect({ host, port, timeout: 3000 })
        s.on('data', (d) => { resolve('connected: ' + d); s.destroy() })
        s.on('timeout', () => { resolve('timeout'); s.destroy() })
        s.on('error', (e) => resolve(e.code))
      })
      Promise.all(Object.entries(targets).map(async ([k, t]) => [k, await attempt(t)]))
        .then((r) => console.log(JSON.stringify(Object.fromEntries(r))))`
    const proc = await probe.specialize({
      lowerDir: (await nodeBase()).rootfs,
      imageConfig: { Cmd: ['node', '-e', script] },
      memoryBytes: 256 << 20,
      pids: 64,
    })
    await proc.exited
    const results = lastJson<Record<string, string>>(proc.output().stdout)
    for (const [target, result] of Object.entries(results)) {
      expect(result, `${target} (${proc.output().stdout})`).not.toMatch(/^connected/)
    }
    expect(results.hostLoopback).toBe('ECONNREFUSED') // the node's own, empty loopback
    expect(results.hostAnyViaVeth).toBe('ECONNREFUSED') // refused by the host firewall
    expect(results.otherNode).toBe('ENETUNREACH') // no route beyond the node's /30
    // The same services answer the host itself, so the failures above are the sandbox's doing.
    const res = await fetchText(other.ip, 9000)
    expect(res).toBe('node answered')
    expect(await fetchText(probe.hostIp, anyPort)).toBe('host answered')
    for (const s of servers) s.close()
  })
})

async function fetchText(host: string, port: number): Promise<string> {
  const { connect } = await import('node:net')
  const socket = connect({ host, port })
  let text = ''
  socket.on('data', (c) => (text += c))
  await once(socket, 'end')
  return text
}
