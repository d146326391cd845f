import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkStore } from '../../registry-edge/store/check-store.ts'
import { expectStatus, pushBlob, pushImage, sha256, type UploadMode } from '../support/edge-client.ts'
import { freePort, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

async function startEdge(store: string): Promise<{ url: string; process: TestProcess }> {
  const port = await freePort()
  const process = startProcess(THAW, ['edge', '--port', String(port), '--store', store])
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://127.0.0.1:${port}`, process }
}

async function expectBlob(url: string, repo: string, data: Uint8Array): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${sha256(data)}`)
  await expectStatus(res, 200)
  expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data))
}

describe('SIGKILL', () => {
  it('a killed edge restarts with a consistent store, and the upload it was receiving resumes', async () => {
    const store = await tmpDir('thaw-edge-kill-')
    const first = await startEdge(store)
    const image = await pushImage(first.url, 'apps/kept', 'v1', [randomBytes(300_000)])
    const data = randomBytes(6 * 1024 * 1024)
    const post = await fetch(`${first.url}/v2/apps/big/blobs/uploads/`, { method: 'POST' })
    const session = new URL(post.headers.get('location')!, first.url).pathname
    const patch = await fetch(`${first.url}${session}`, { method: 'PATCH', body: data.subarray(0, 1 << 20), headers: { 'content-range': `0-${(1 << 20) - 1}` } })
    await expectStatus(patch, 202)

    // The next chunk is half sent when the edge dies.
    const chunk = data.subarray(1 << 20)
    const req = request(`${first.url}${session}`, {
      method: 'PATCH',
      headers: { 'content-length': String(chunk.length), 'content-range': `${1 << 20}-${data.length - 1}` },
    })
    req.on('error', () => {})
    req.write(chunk.subarray(0, 2 << 20))
    await new Promise((r) => setTimeout(r, 300))
    await first.process.kill()
    req.destroy()

    const second = await startEdge(store)
    expect(await checkStore(store)).toEqual([])
    expect(await readdir(join(store, 'tmp'))).toEqual([])
    // What was acknowledged is intact; the unfinished blob is not visible.
    const manifest = await fetch(`${second.url}/v2/apps/kept/manifests/v1`)
    expect(Buffer.from(await manifest.arrayBuffer()).equals(image.bytes)).toBe(true)
    expect((await fetch(`${second.url}/v2/apps/big/blobs/${sha256(data)}`)).status).toBe(404)
    // The session survived with whatever reached its file, and continues from there.
    const status = await fetch(`${second.url}${session}`)
    expect(status.status).toBe(204)
    const offset = Number(status.headers.get('range')!.split('-')[1]) + 1
    expect(offset).toBeGreaterThanOrEqual(1 << 20)
    expect(offset).toBeLessThanOrEqual(3 << 20)
    const rest = await fetch(`${second.url}${session}`, { method: 'PATCH', body: data.subarray(offset), headers: { 'content-range': `${offset}-${data.length - 1}` } })
    await expectStatus(rest, 202)
    await expectStatus(await fetch(`${second.url}${session}?digest=${sha256(data)}`, { method: 'PUT' }), 201)
    await expectBlob(second.url, 'apps/big', data)
    await second.process.stop()
  })

  it('never leaves a visible partial blob when killed at random moments during concurrent pushes', async () => {
    const store = await tmpDir('thaw-edge-chaos-')
    const acknowledged: { repo: string; data: Buffer }[] = []
    const modes: UploadMode[] = ['monolithic', 'post-put', 'chunked']
    for (let round = 0; round < 3; round++) {
      const { url, process } = await startEdge(store)
      let stopped = false
      const pusher = async (worker: number) => {
        for (let i = 0; !stopped; i++) {
          const repo = `chaos/w${worker}`
          const data = randomBytes(100_000 + Math.floor(Math.random() * 3_000_000))
          try {
            await pushBlob(url, repo, data, modes[i % 3], 512 * 1024)
            acknowledged.push({ repo, data })
            await pushImage(url, repo, `r${round}-${i}`, [data])
          } catch {
            // the edge died under this push
          }
        }
      }
      const pushers = [0, 1, 2, 3].map(pusher)
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 1200))
      await process.kill()
      stopped = true
      await Promise.all(pushers)
    }
    const { url, process } = await startEdge(store)
    expect(await checkStore(store)).toEqual([])
    expect(acknowledged.length).toBeGreaterThan(0)
    for (const { repo, data } of acknowledged) await expectBlob(url, repo, data)
    await process.stop()
  })
})
