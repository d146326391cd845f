/** @jsxRuntime automatic @jsxImportSource hono/jsx */
import { raw } from 'hono/html'
import type { Child } from 'hono/jsx'
import { LRUCache } from 'lru-cache'
import type { App } from '../../apps/app-spec.ts'
import type { AppRecord, Revision } from '../../apps/revision.ts'
import type { InvocationRecord } from '../../logs/recent-invocations.ts'
import { COLD_START_PHASES } from '../../pool/cold-start.ts'
import type { PoolStatus } from '../../pool/pool.ts'
import type { ProfileState } from '../../pool/profile-tracker.ts'
import type { ColdStartRecord } from '../../pool/recent-cold-starts.ts'
import type { EdgeFigures, EdgeImage } from './edge-stats.ts'

/** What the dashboard shows, gathered at one moment (dashboard.ts). */
export interface DashboardData {
  uptimeSeconds: number
  apps: App[]
  /** An app's revisions, newest first (apps/app-store.ts record). */
  record(name: string): AppRecord | undefined
  pool: PoolStatus
  coldStarts: ColdStartRecord[]
  /** Finished invocations, newest first (logs/recent-invocations.ts). */
  invocations: InvocationRecord[]
  profiles: ProfileState[]
  edges: EdgeFigures[]
  edgeImage(reference: string, workload: string): EdgeImage | undefined
}

/** The page's live sections: each is one SSE event name and one element swapped by htmx. */
export const SECTIONS = {
  summary: Summary,
  apps: Apps,
  nodes: Nodes,
  'cold-starts': ColdStarts,
  invocations: Invocations,
  images: Images,
  edges: Edges,
} satisfies Record<string, (p: { d: DashboardData }) => Child>

export type SectionName = keyof typeof SECTIONS

const ASSETS = '/admin/ui/assets'

/**
 * Rows of records that never change (an invocation, a cold start), rendered once: the live view
 * renders its sections every second, and 1000 invocation rows through JSX each time would cost
 * the host's event loop 100 ms and more.
 */
const rowCache = new LRUCache<string, string>({ max: 4000 })
function once(key: string, render: () => Child): Child {
  let html = rowCache.get(key)
  if (html === undefined) rowCache.set(key, (html = String(render())))
  return raw(html)
}

function Page(p: { title: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* No inline styles or eval (the CSP forbids both). */}
        <meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false}' />
        <title>{p.title}</title>
        <link rel="stylesheet" href={`${ASSETS}/dashboard.css`} />
      </head>
      <body>{p.children}</body>
    </html>
  )
}

export function LoginPage(p: { refused: boolean }) {
  return (
    <Page title="thaw host: log in">
      <main class="login">
        <h1>thaw host</h1>
        <form method="post" action="/admin/ui/login" aria-describedby="login-help">
          <label for="key">Master key</label>
          <input
            id="key"
            name="key"
            type="password"
            autocomplete="current-password"
            required
            autofocus
          />
          <p id="login-help">The host's master key (master.key in its state directory).</p>
          {p.refused && (
            <p role="alert" class="error" id="login-error">
              That is not the master key.
            </p>
          )}
          <button type="submit">Log in</button>
        </form>
      </main>
    </Page>
  )
}

export function DashboardPage(p: { d: DashboardData; csrf: string }) {
  const section = (name: SectionName, title: string) => {
    const Body = SECTIONS[name]
    return (
      <section aria-labelledby={`${name}-title`}>
        <h2 id={`${name}-title`}>{title}</h2>
        <div id={name} sse-swap={name}>
          <Body d={p.d} />
        </div>
      </section>
    )
  }
  return (
    <Page title="thaw host">
      <a class="skip" href="#main">
        Skip to the dashboard
      </a>
      <header>
        <h1>thaw host</h1>
        <nav aria-label="Sections">
          <a href="#apps-title">Apps</a> <a href="#nodes-title">Nodes</a>{' '}
          <a href="#cold-starts-title">Cold starts</a> <a href="#invocations-title">Invocations</a>{' '}
          <a href="#images-title">Images</a> <a href="#edges-title">Edges</a>
        </nav>
        <form method="post" action="/admin/ui/logout">
          <input type="hidden" name="csrf" value={p.csrf} />
          <button type="submit">Log out</button>
        </form>
      </header>
      <main id="main" hx-ext="sse" sse-connect="/admin/ui/events">
        <div id="summary" sse-swap="summary" aria-live="polite">
          <Summary d={p.d} />
        </div>
        {section('apps', 'Apps')}
        {section('nodes', 'Nodes and the warm pool')}
        {section('cold-starts', 'Cold starts')}
        {section('invocations', 'Recent invocations')}
        {section('images', 'Images: record and replay')}
        {section('edges', 'Edges')}
      </main>
      <script src={`${ASSETS}/htmx.min.js`}></script>
      <script src={`${ASSETS}/sse.js`}></script>
    </Page>
  )
}

function Summary({ d }: { d: DashboardData }) {
  const nodes = Object.values(d.pool.apps).flatMap((a) => a.nodes)
  return (
    <p class="summary">
      Up {duration(d.uptimeSeconds)} · {d.apps.length} apps · warm pool{' '}
      <span data-warm-ready>{d.pool.warm.ready}</span> of {d.pool.warm.target} ready ·{' '}
      {nodes.length} nodes, {nodes.filter((n) => n.state === 'ready').length} ready,{' '}
      {nodes.reduce((n, x) => n + x.inflight, 0)} requests in flight · {d.coldStarts.length} cold
      starts kept
    </p>
  )
}

function Table(p: { label: string; head: string[]; empty: string; rows: Child[] }) {
  if (p.rows.length === 0) return <p class="empty">{p.empty}</p>
  return (
    <div class="scroll" role="region" aria-label={p.label} tabindex={0}>
      <table>
        <caption class="visually-hidden">{p.label}</caption>
        <thead>
          <tr>
            {p.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{p.rows}</tbody>
      </table>
    </div>
  )
}

function Apps({ d }: { d: DashboardData }) {
  const rows = d.apps.map((app) => {
    const nodes = d.pool.apps[app.name]
    return (
      <tr>
        <th scope="row">{app.name}</th>
        <td class="mono">{app.image}</td>
        <td>
          <Revisions app={app} record={d.record(app.name)} />
        </td>
        <td>{time(app.updatedAt)}</td>
        <td>{nodes?.nodes.length ?? 0}</td>
        <td>{nodes?.waiting ?? 0}</td>
      </tr>
    )
  })
  return (
    <Table
      label="Apps"
      head={['App', 'Image', 'Revision', 'Changed', 'Nodes', 'Waiting']}
      empty="No apps yet: thaw deploy, or PUT /admin/apps/<name>."
      rows={rows}
    />
  )
}

/** The active revision, and every kept one (newest first) in a disclosure. */
function Revisions(p: { app: App; record: AppRecord | undefined }) {
  const revisions = p.record?.revisions ?? []
  return (
    <details>
      <summary>
        r{p.app.revision} active ({revisions.length} kept)
      </summary>
      <ol class="revisions" reversed>
        {revisions.map((r) => (
          <li data-revision={r.number}>
            r{r.number} · {cause(r)} · {time(r.createdAt)}
            {r.number === p.app.revision && ' · active'}
            {r.failed && <span class="error"> · failed: {r.failed.error}</span>}
            <br />
            <span class="mono">{r.image}</span>
          </li>
        ))}
      </ol>
    </details>
  )
}

function cause(r: Revision): string {
  return r.cause.kind === 'rollback' ? `rollback to r${r.cause.to}` : r.cause.kind
}

function Nodes({ d }: { d: DashboardData }) {
  const rows = Object.entries(d.pool.apps).flatMap(([app, s]) =>
    s.nodes.map((n) => (
      <tr>
        <th scope="row" class="mono">
          {n.id}
        </th>
        <td>{app}</td>
        <td>
          <span class={`state state-${n.state}`}>{n.state}</span>
        </td>
        <td>{n.inflight}</td>
        <td>{n.served}</td>
      </tr>
    )),
  )
  return (
    <>
      <p>
        Warm pool: {d.pool.warm.ready} of {d.pool.warm.target} nodes ready to specialize.
      </p>
      <Table
        label="Nodes of apps"
        head={['Node', 'App', 'State', 'In flight', 'Served']}
        empty="No app has a node: the next request of an app is a cold start."
        rows={rows}
      />
    </>
  )
}

/** Phases drawn in the waterfall, one after the other (total also counts waiting for a node). */
const PHASES = COLD_START_PHASES.filter((p) => p !== 'total')

function ColdStarts({ d }: { d: DashboardData }) {
  const rows = d.coldStarts.map((c) =>
    once(`cold ${c.invocationId}`, () => (
      <tr data-invocation={c.invocationId} id={`cold-${c.invocationId}`}>
        <th scope="row">
          {time(c.time)}
          <br />
          <span class="mono">{c.app}</span>
        </th>
        {PHASES.map((p) => (
          <td data-phase={p}>{c[p].toFixed(1)}</td>
        ))}
        <td data-phase="total">{c.total.toFixed(1)}</td>
        <td data-figure="bytes">{c.bytes}</td>
        <td data-figure="requests">{c.requests}</td>
        <td>
          <Waterfall c={c} />
        </td>
      </tr>
    )),
  )
  return (
    <>
      {rows.length > 0 && (
        <p class="legend" aria-hidden="true">
          {PHASES.map((p) => (
            <span>
              <svg width="10" height="10">
                <rect class={`phase-${p}`} width="10" height="10" />
              </svg>{' '}
              {p}
            </span>
          ))}
        </p>
      )}
      <Table
        label="Cold starts, newest first (ms; image data fetched from the edge)"
        head={['When, app', ...PHASES, 'total', 'bytes', 'requests', 'waterfall']}
        empty="No cold start yet."
        rows={rows}
      />
    </>
  )
}

/** The phases as consecutive bars scaled to the cold start's total (SVG: no inline styles). */
function Waterfall({ c }: { c: ColdStartRecord }) {
  const width = 300
  const scale =
    width /
    Math.max(
      c.total,
      PHASES.reduce((n, p) => n + c[p], 0),
      1,
    )
  let x = 0
  const label = PHASES.map((p) => `${p} ${c[p].toFixed(1)} ms`).join(', ')
  return (
    <svg class="waterfall" width={width} height="18" role="img" aria-label={`Waterfall: ${label}`}>
      {PHASES.map((p) => {
        const w = Math.max(c[p] * scale, c[p] > 0 ? 1 : 0)
        const bar = (
          <rect class={`phase-${p}`} x={x.toFixed(1)} y="2" width={w.toFixed(1)} height="14">
            <title>{`${p}: ${c[p].toFixed(1)} ms`}</title>
          </rect>
        )
        x += w
        return bar
      })}
    </svg>
  )
}

function Invocations({ d }: { d: DashboardData }) {
  const rows = d.invocations.map((i) =>
    once(`invocation ${i.id}`, () => (
      <tr data-invocation={i.id} class={i.status >= 500 ? 'failed' : undefined}>
        <th scope="row">{time(i.time)}</th>
        <td>{i.app}</td>
        <td>{i.function}</td>
        <td>{i.trigger}</td>
        <td>{i.status}</td>
        <td data-figure="duration">{i.durationMs.toFixed(1)}</td>
        <td>{i.cold ? <a href={`#cold-${i.id}`}>cold start</a> : 'warm'}</td>
        <td class="mono">{i.node ?? '–'}</td>
        <td>{i.revision === undefined ? '–' : `r${i.revision}`}</td>
      </tr>
    )),
  )
  return (
    <Table
      label="Recent invocations, newest first (duration in ms)"
      head={[
        'Ended',
        'App',
        'Function',
        'Trigger',
        'Status',
        'Duration',
        'Start',
        'Node',
        'Revision',
      ]}
      empty="No invocation yet."
      rows={rows}
    />
  )
}

function Images({ d }: { d: DashboardData }) {
  const rows = d.profiles.map((p) => {
    const edge = d.edgeImage(p.reference, p.workload)
    return (
      <tr>
        <th scope="row" class="mono">
          {p.reference}
        </th>
        <td>{p.workload}</td>
        <td>{p.state}</td>
        <td>{p.recorded}</td>
        <td>{p.replayed}</td>
        <td>{edge?.generation ?? '–'}</td>
        <td>{edge?.state ?? edge?.error ?? '–'}</td>
        <td>{edge?.bundleBytes === undefined ? 'none' : bytes(edge.bundleBytes)}</td>
      </tr>
    )
  })
  return (
    <Table
      label="Images"
      head={[
        'Image',
        'Workload',
        'Profile',
        'Recorded',
        'Replayed',
        'Generation',
        'Conversion',
        'Bundle',
      ]}
      empty="No image has started on this host yet."
      rows={rows}
    />
  )
}

function Edges({ d }: { d: DashboardData }) {
  const rows = d.edges.map((e) => (
    <tr>
      <th scope="row" class="mono">
        {e.url}
      </th>
      <td>
        {Object.entries(e.conversions)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ') || '0'}
        {e.conversionsInProgress > 0 && `, ${e.conversionsInProgress} running`}
      </td>
      <td>{e.hitRate === undefined ? '–' : `${(e.hitRate * 100).toFixed(1)} %`}</td>
      <td>{bytes(e.bytesServed)}</td>
      <td>{e.error ?? 'ok'}</td>
    </tr>
  ))
  return (
    <Table
      label="Edges"
      head={['Edge', 'Conversions', 'Cache hit rate', 'Bytes served', 'Status']}
      empty="No edge yet (the host asks the edges of its apps' images)."
      rows={rows}
    />
  )
}

function time(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

function duration(s: number): string {
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  return `${(s / 3600).toFixed(1)} h`
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
