import { copyFile, mkdir, readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import puppeteer, { type Browser, type Page, type SerializedAXNode } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForStreamingArtifact } from '../../host/deploy/wait-for-artifact.ts'
import { jsonHostLogger } from '../../host/log/host-logger.ts'
import { createImageMounts } from '../../host/mount/create-image-mounts.ts'
import { COLD_START_PHASES, parseColdStart } from '../../host/pool/cold-start.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { onCleanup } from '../support/cleanup.ts'
import { startEdgeProcess, type EdgeProcess } from '../support/edge-process.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * The host's dashboard in a real browser (Debian's chromium driven by puppeteer-core; no browser
 * is downloaded): a real edge converts the pushed app, a host with lazy FUSE mounts and runc nodes
 * runs it. A wrong key is refused; the right one logs in (a cookie, never a URL); a cold start
 * caused from outside appears in the waterfall through server-sent events, without a reload,
 * with the figures of its `x-thaw-cold-start` header; the edge's figures appear too.
 *
 * THAW_DASHBOARD_SCREENSHOT=docs/dashboard.png also writes the screenshot the README shows.
 */
const CHROMIUM = '/usr/bin/chromium'
const skip =
  sandboxUnavailable ||
  (fuseUnavailable ? 'no /dev/fuse' : false) ||
  (existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (scripts/install.sh installs it)`)

const APP = `const { app } = require('@azure/functions')
app.http('hello', { authLevel: 'anonymous', handler: async () => ({ body: 'hello from the dashboard test' }) })
`

describe.skipIf(skip)(
  skip ? `dashboard in a browser (skipped: ${skip})` : 'dashboard in a browser',
  { timeout: 180_000 },
  () => {
    let edge: EdgeProcess
    let host: RunningHost
    let image: string
    let browser: Browser
    let page: Page
    const visited: string[] = []
    const hostLog: string[] = []

    beforeAll(async () => {
      edge = await startEdgeProcess()
      const registry = new URL(edge.url).host
      image = await pushAppImage({
        registry,
        repository: 'apps/dash',
        tag: 'v1',
        base: await nodeBase(),
        files: {
          'host.json': '{ "version": "2.0" }',
          'package.json': '{ "name": "dash", "main": "index.js" }',
          'index.js': APP,
        },
      })
      const client = createRegistryClient({ registry: edge.url })
      const manifest = (await client.getManifest('apps/dash', 'v1')).digest
      await waitForStreamingArtifact({ client, repository: 'apps/dash', manifest })
      await client.close()

      const state = await tmpDir('thaw-dashboard-')
      const mounts = await createImageMounts({
        edges: [edge.url],
        cacheDir: join(state, 'cache'),
        mountRoot: join(state, 'mnt'),
        cacheBytes: 1 << 30,
        background: false,
        logger: { info: () => {}, warn: () => {} },
      })
      const logger = jsonHostLogger((line) => void hostLog.push(line), 'debug')
      host = await startHost({ stateDir: state, port: 0, warm: 1, mounts, logger })
      onCleanup('servers', () => host.close())
      const res = await fetch(`${host.url}/admin/apps/dash`, {
        method: 'PUT',
        headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
        body: JSON.stringify({ image }),
      })
      expect(res.status, await res.clone().text()).toBe(201)

      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox'],
        headless: true,
      })
      onCleanup('servers', () => browser.close())
      page = await browser.newPage()
      await page.setViewport({ width: 1280, height: 900 })
      page.on('request', (r) => void visited.push(r.url()))
    }, 600_000)

    afterAll(async () => {
      await browser?.close()
      await host?.close()
    })

    const text = (selector: string) =>
      page.evaluate(
        `document.querySelector(${JSON.stringify(selector)})?.textContent ?? null`,
      ) as Promise<string | null>

    it('refuses a wrong key, and logs in with the master key into a cookie', async () => {
      await page.goto(`${host.url}/admin/ui`)
      await page.type('#key', 'not-the-key')
      const [refused] = await Promise.all([
        page.waitForNavigation(),
        page.click('button[type=submit]'),
      ])
      expect(refused?.status()).toBe(401)
      expect(await text('[role=alert]')).toMatch(/not the master key/)
      // The field says why, to a screen reader too: invalid, described by the error.
      expect(await page.$eval('#key', (i) => i.getAttribute('aria-invalid'))).toBe('true')
      expect(await page.$eval('#key', (i) => i.getAttribute('aria-describedby'))).toContain(
        'login-error',
      )
      expect(await page.$eval('label[for=key]', (l) => l.textContent)).toBe('Master key')
      expect(await browser.cookies()).toEqual([])
      // Without a session the live view answers nothing.
      expect((await fetch(`${host.url}/admin/ui/events`)).status).toBe(401)

      await page.type('#key', host.masterKey)
      const [loggedIn] = await Promise.all([
        page.waitForNavigation(),
        page.click('button[type=submit]'),
      ])
      expect(loggedIn?.status()).toBe(200)
      expect(page.url()).toBe(`${host.url}/admin/ui`)
      expect(await text('#apps')).toContain('dash')
      const [cookie, ...others] = await browser.cookies()
      expect(others).toEqual([])
      expect(cookie).toMatchObject({
        name: 'thaw_ui',
        httpOnly: true,
        sameSite: 'Strict',
        path: '/admin/ui',
      })
      expect(cookie!.value).not.toContain(host.masterKey)
    })

    it('shows a cold start caused elsewhere, live, with the figures of its x-thaw-cold-start header', async () => {
      let navigations = 0
      page.on('framenavigated', () => navigations++)
      expect(await text('#cold-starts')).toContain('No cold start yet')

      const res = await fetch(`${host.url}/dash/api/hello`)
      expect(await res.text()).toBe('hello from the dashboard test')
      const header = parseColdStart(res.headers.get('x-thaw-cold-start')!)
      expect(header.bytes).toBeGreaterThan(0) // a lazy mount from a cold cache fetched the image's start

      await page.waitForSelector('#cold-starts tr[data-invocation]')
      const cells = (await page.evaluate(`Object.fromEntries([...document.querySelectorAll(
      '#cold-starts tr[data-invocation] td[data-phase], #cold-starts tr[data-invocation] td[data-figure]'
    )].map((td) => [td.dataset.phase ?? td.dataset.figure, td.textContent]))`)) as Record<
        string,
        string
      >
      const expected = Object.fromEntries([
        ...COLD_START_PHASES.map((p) => [p, header[p].toFixed(1)]),
        ['bytes', String(header.bytes)],
        ['requests', String(header.requests)],
      ])
      expect(cells).toEqual(expected)
      expect(await page.$$('#cold-starts svg.waterfall rect')).toHaveLength(6)
      // The invocation that waited for it, in the recent invocations, linked to its waterfall row.
      const id = await page.$eval('#cold-starts tr[data-invocation]', (tr) =>
        tr.getAttribute('data-invocation'),
      )
      await page.waitForSelector(`#invocations tr[data-invocation="${id}"]`)
      expect(await text(`#invocations tr[data-invocation="${id}"]`)).toMatch(
        /dash.*hello.*http.*200.*cold start/,
      )
      expect(
        await page.$eval(`#invocations tr[data-invocation="${id}"] a`, (a) =>
          a.getAttribute('href'),
        ),
      ).toBe(`#cold-${id}`)
      expect(navigations).toBe(0) // it came over the event stream, not a reload

      // The node that served it, and later the edge's figures and the image's state.
      await page.waitForFunction(`document.querySelector('#nodes')?.textContent.includes('ready')`)
      await page.waitForFunction(
        `document.querySelector('#edges')?.textContent.includes(${JSON.stringify(edge.url)})`,
        { timeout: 30_000 },
      )
      expect(await text('#edges')).toMatch(/\d+ converted/)
      await page.waitForFunction(
        `document.querySelector('#images')?.textContent.includes('uploaded')`,
        { timeout: 30_000 },
      )
      expect(await text('#images')).toContain(image)

      const shot = process.env.THAW_DASHBOARD_SCREENSHOT
      if (shot) {
        await page.click('#app-dash-revisions') // the revisions kept, shown
        await page.mouse.move(0, 0)
        await mkdir(dirname(resolve(shot)), { recursive: true })
        const tmp = join(await tmpDir('thaw-dashboard-shot-'), 'dashboard.png')
        await page.screenshot({ path: tmp as `${string}.png`, fullPage: true })
        await copyFile(tmp, resolve(shot))
      }
    })

    it('is usable with the keyboard and labelled', async () => {
      // The skip link comes first and moves the focus to the dashboard itself.
      await page.goto(`${host.url}/admin/ui`)
      await page.keyboard.press('Tab')
      expect(await page.evaluate('document.activeElement.textContent')).toBe(
        'Skip to the dashboard',
      )
      await page.keyboard.press('Enter')
      expect(await page.evaluate('document.activeElement.id')).toBe('main')
      // Tab goes on into the first table, a labelled scrolling region.
      await page.keyboard.press('Tab')
      expect(
        await page.evaluate(
          `[document.activeElement.getAttribute('role'), document.activeElement.getAttribute('aria-label')]`,
        ),
      ).toEqual(['region', 'Apps'])
      // Every table has a caption and column headers; every control, link, region, table and
      // image in chromium's accessibility tree has a name.
      expect(
        await page.$$eval('table', (ts) => ts.filter((t) => !t.caption?.textContent).length),
      ).toBe(0)
      expect(await page.$$eval('thead th:not([scope=col])', (ths) => ths.length)).toBe(0)
      const unnamed: string[] = []
      const walk = (n: SerializedAXNode | undefined) => {
        if (!n) return
        const named = ['button', 'link', 'textbox', 'region', 'table', 'image', 'navigation']
        if (named.includes(n.role) && !n.name?.trim()) unnamed.push(n.role)
        n.children?.forEach(walk)
      }
      walk((await page.accessibility.snapshot()) ?? undefined)
      expect(unnamed).toEqual([])
    })

    it('stays usable with 100 apps and 1000 recent invocations', async () => {
      for (let i = 1; i < 100; i++) {
        const res = await fetch(`${host.url}/admin/apps/app${i}`, {
          method: 'PUT',
          headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
          body: JSON.stringify({ image }),
        })
        expect(res.status).toBe(201)
      }
      const call = async () => expect((await fetch(`${host.url}/dash/api/hello`)).status).toBe(200)
      // 16 at a time: the app's concurrency per node, so no other node starts.
      const calling = Date.now()
      for (let i = 0; i < 63; i++) await Promise.all(Array.from({ length: 16 }, call))
      const callsMs = Date.now() - calling

      // Every live update the page gets from its first moment on (htmx's SSE extension).
      await page.evaluateOnNewDocument(`window.updates = [];
        document.addEventListener('htmx:sseBeforeMessage', (e) => window.updates.push(e.detail.data))`)
      await page.goto(`${host.url}/admin/ui`)
      expect(await page.$$('#apps tbody tr')).toHaveLength(100)
      expect(await page.$$('#invocations tbody tr')).toHaveLength(1000)
      const loaded = (await page.evaluate(
        `performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd`,
      )) as number
      const ids = () =>
        page.$$eval('#invocations tbody tr', (trs) => trs.map((tr) => tr.dataset.invocation!))
      const listed = await ids()
      // One more invocation comes live at the top of the list, the oldest goes.
      const sent = Date.now()
      await call()
      await page.waitForFunction(
        `document.querySelector('#invocations tbody tr')?.dataset.invocation !== ${JSON.stringify(listed[0])}`,
      )
      const shownMs = Date.now() - sent
      const now = await ids()
      expect(now).toEqual([now[0], ...listed.slice(0, 999)])
      // It came as that one row (and the removal of the oldest), not as the table: since the page
      // was loaded, no update carried any other invocation.
      const updates = (await page.evaluate('window.updates')) as string[]
      const carried = updates.flatMap((u) => [...u.matchAll(/data-invocation="([^"]+)"/g)])
      expect(carried.map((m) => m[1])).toEqual([now[0]])
      const update = updates.find((u) => u.includes(`data-invocation="${now[0]}"`))!
      expect(update).toContain(`<tr id="invocation-${listed[999]}" hx-swap-oob="delete">`)
      const html = (await page.content()).length
      console.log(
        `dashboard with 100 apps, 1000 invocations: page ${html} bytes, DOMContentLoaded ${loaded.toFixed(0)} ms; ` +
          `the update with a new invocation ${update.length} bytes (updates since load: ${updates.map((u) => u.length).join(', ')}), ` +
          `shown ${shownMs} ms after its request (the 1008 calls before took ${callsMs} ms); load average ${(await readFile('/proc/loadavg', 'utf8')).trim()}`,
      )
    })

    it('shows a new revision of an app live, with the ones kept', async () => {
      expect(await text('#apps')).toContain('r1 active (1 kept)')
      // Someone reading with the keyboard is on the app's revisions when its row is replaced.
      await page.focus('#app-dash-revisions')
      const res = await fetch(`${host.url}/admin/apps/dash`, {
        method: 'PATCH',
        headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
        body: JSON.stringify({ settings: { GREETING: 'hi' } }),
      })
      expect(res.status, await res.clone().text()).toBe(200)
      await page.waitForFunction(
        `document.querySelector('#apps')?.textContent.includes('r2 active (2 kept)')`,
      )
      expect(await page.evaluate('document.activeElement.id')).toBe('app-dash-revisions')
      expect(await text('#apps li[data-revision="1"]')).toContain('create')
      expect(await text('#apps li[data-revision="2"]')).toMatch(/settings .* active/)
    })

    it('asked nothing from elsewhere, never put the key in a URL or a log line, and logs out', async () => {
      expect(visited.length).toBeGreaterThan(3)
      for (const url of visited) expect(url).not.toContain(host.masterKey)
      // Offline: every request the browser made went to the host (no CDN, no font service).
      for (const url of visited) expect(url.startsWith(`${host.url}/`)).toBe(true)
      expect(visited.some((u) => u.includes('/admin/ui/events?view='))).toBe(true)
      expect(hostLog.join('')).not.toContain(host.masterKey)
      expect(hostLog.join('')).toMatch(/dashboard login refused/)

      await Promise.all([page.waitForNavigation(), page.click('header form button')])
      expect(await page.$('#key')).not.toBeNull()
      expect(await browser.cookies()).toEqual([])
    })
  },
)
