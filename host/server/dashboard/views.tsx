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
import { leadId, rowId, rowsId, type Row, type SectionView } from './section-view.ts'

/** What the dashboard shows, gathered at one moment (dashboard.ts). */
export interface DashboardData {
  /** When the host started (ISO 8601). */
  startedAt: string
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

/** Phases drawn in the waterfall, one after the other (total also counts waiting for a node). */
const PHASES = COLD_START_PHASES.filter((p) => p !== 'total')

/** The page's parts that change: each a lead and maybe a table (section-view.ts). */
interface Section {
  /** The heading of its `<section>`; the summary has none. */
  title?: string
  table?: { label: string; head: string[]; empty: string }
  view(d: DashboardData): { lead?: Child; rows?: Row[] }
}

export const SECTIONS = {
  summary: { view: (d) => ({ lead: <Summary d={d} /> }) },
  apps: {
    title: 'Apps',
    table: {
      label: 'Apps',
      head: ['App', 'Image', 'Revision', 'Changed', 'Nodes', 'Waiting'],
      empty: 'No apps yet: thaw deploy, or PUT /admin/apps/<name>.',
    },
    view: (d) => ({ rows: appRows(d) }),
  },
  nodes: {
    title: 'Nodes and the warm pool',
    table: {
      label: 'Nodes of apps',
      head: ['Node', 'App', 'State', 'In flight', 'Served'],
      empty: 'No app has a node: the next request of an app is a cold start.',
    },
    view: (d) => ({
      lead: (
        <p>
          Warm pool: {d.pool.warm.ready} of {d.pool.warm.target} nodes ready to specialize.
        </p>
      ),
      rows: nodeRows(d),
    }),
  },
  'cold-starts': {
    title: 'Cold starts',
    table: {
      label: 'Cold starts, newest first (ms; image data fetched from the edge)',
      head: ['When, app', ...PHASES, 'total', 'bytes', 'requests', 'waterfall'],
      empty: 'No cold start yet.',
    },
    view: (d) => ({ lead: d.coldStarts.length > 0 && <Legend />, rows: coldStartRows(d) }),
  },
  invocations: {
    title: 'Recent invocations',
    table: {
      label: 'Recent invocations, newest first (duration in ms)',
      head: [
        'Ended',
        'App',
        'Function',
        'Trigger',
        'Status',
        'Duration',
        'Start',
        'Node',
        'Revision',
      ],
      empty: 'No invocation yet.',
    },
    view: (d) => ({ rows: invocationRows(d) }),
  },
  images: {
    title: 'Images: record and replay',
    table: {
      label: 'Images',
      head: [
        'Image',
        'Workload',
        'Profile',
        'Recorded',
        'Replayed',
        'Generation',
        'Conversion',
        'Bundle',
      ],
      empty: 'No image has started on this host yet.',
    },
    view: (d) => ({ rows: imageRows(d) }),
  },
  edges: {
    title: 'Edges',
    table: {
      label: 'Edges',
      head: ['Edge', 'Conversions', 'Cache hit rate', 'Bytes served', 'Status'],
      empty: "No edge yet (the host asks the edges of its apps' images).",
    },
    view: (d) => ({ rows: edgeRows(d) }),
  },
} satisfies Record<string, Section>

export type SectionName = keyof typeof SECTIONS
/** Every section as one page (or one moment of the live view) shows it. */
export type PageView = Record<SectionName, SectionView>

/** The sections of `d` as HTML: a table without rows gets one row that says why. */
export function pageView(d: DashboardData): PageView {
  const out = {} as PageView
  for (const [name, s] of Object.entries(SECTIONS) as [SectionName, Section][]) {
    const v = s.view(d)
    let rows = v.rows
    if (s.table && rows?.length === 0) {
      const id = `${name}-empty`
      rows = [
        {
          id,
          html: String(
            <tr id={id}>
              <td colspan={s.table.head.length} class="empty">
                {s.table.empty}
              </td>
            </tr>,
          ),
        },
      ]
    }
    out[name] = { lead: v.lead === undefined ? '' : String(<>{v.lead}</>), rows }
  }
  return out
}

const ASSETS = '/admin/ui/assets'

/** A row of the table: its id and its HTML (the `<tr>` rendered carries the id). */
function row(id: string, render: (id: string) => Child): Row {
  return { id, html: String(render(id)) }
}

/**
 * Rows of records that never change (an invocation, a cold start), rendered once: the live view
 * renders its sections every second, and 1000 invocation rows through JSX each time would cost
 * the host's event loop 100 ms and more. `variant` tells apart the forms a row can take.
 */
const rowCache = new LRUCache<string, string>({ max: 4000 })
function once(id: string, render: (id: string) => Child, variant = ''): Row {
  const key = `${id} ${variant}`
  let html = rowCache.get(key)
  if (html === undefined) rowCache.set(key, (html = String(render(id))))
  return { id, html }
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

/** Why the login form is shown again: a wrong key, or too many wrong keys lately. */
export type LoginRefusal = { kind: 'wrong-key' } | { kind: 'throttled'; retryAfterSeconds: number }

export function LoginPage(p: { refused?: LoginRefusal }) {
  const error = p.refused && 'login-error'
  return (
    <Page title="thaw host: log in">
      <main class="login">
        <h1>thaw host</h1>
        <form method="post" action="/admin/ui/login">
          <label for="key">Master key</label>
          <input
            id="key"
            name="key"
            type="password"
            autocomplete="current-password"
            required
            autofocus
            aria-describedby={['login-help', error].filter(Boolean).join(' ')}
            aria-invalid={p.refused?.kind === 'wrong-key' ? 'true' : undefined}
          />
          <p id="login-help">The host's master key (master.key in its state directory).</p>
          {p.refused && (
            <p role="alert" class="error" id="login-error">
              {p.refused.kind === 'wrong-key'
                ? 'That is not the master key.'
                : `Too many wrong keys lately: try again in ${p.refused.retryAfterSeconds} s.`}
            </p>
          )}
          <button type="submit">Log in</button>
        </form>
      </main>
    </Page>
  )
}

/**
 * The whole page, every section complete; `events` is the live view's URL. Its changes come as
 * one `update` event of out-of-band swaps (section-view.ts) into the parts' ids.
 */
export function DashboardPage(p: { view: PageView; csrf: string; events: string }) {
  const part = (name: SectionName) => {
    const s: Section = SECTIONS[name]
    const v = p.view[name]
    return (
      <>
        <div id={leadId(name)}>{raw(v.lead)}</div>
        {s.table && v.rows && (
          <div class="scroll" role="region" aria-label={s.table.label} tabindex={0}>
            <table>
              <caption class="visually-hidden">{s.table.label}</caption>
              <thead>
                <tr>
                  {s.table.head.map((h) => (
                    <th scope="col">{h}</th>
                  ))}
                </tr>
              </thead>
              <tbody id={rowsId(name)}>{raw(v.rows.map((r) => r.html).join(''))}</tbody>
            </table>
          </div>
        )}
      </>
    )
  }
  const section = (name: SectionName) => (
    <section aria-labelledby={`${name}-title`}>
      <h2 id={`${name}-title`}>{(SECTIONS[name] as Section).title}</h2>
      <div id={name}>{part(name)}</div>
    </section>
  )
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
      <main id="main" tabindex={-1} hx-ext="sse" sse-connect={p.events}>
        <div id="update" sse-swap="update" hx-swap="none" hidden></div>
        <div id="summary">{part('summary')}</div>
        {section('apps')}
        {section('nodes')}
        {section('cold-starts')}
        {section('invocations')}
        {section('images')}
        {section('edges')}
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
      Up since {time(d.startedAt)} · {count(d.apps.length, 'app')} · warm pool{' '}
      <span data-warm-ready>{d.pool.warm.ready}</span> of {d.pool.warm.target} ready ·{' '}
      {count(nodes.length, 'node')}, {nodes.filter((n) => n.state === 'ready').length} ready,{' '}
      {count(
        nodes.reduce((n, x) => n + x.inflight, 0),
        'request',
      )}{' '}
      in flight · {count(d.coldStarts.length, 'cold start')} kept
    </p>
  )
}

function appRows(d: DashboardData): Row[] {
  return d.apps.map((app) => {
    const nodes = d.pool.apps[app.name]
    return row(rowId('app', app.name), (id) => (
      <tr id={id}>
        <th scope="row">{app.name}</th>
        <td class="mono">{app.image}</td>
        <td>
          <Revisions app={app} record={d.record(app.name)} />
        </td>
        <td>{time(app.updatedAt)}</td>
        <td>{nodes?.nodes.length ?? 0}</td>
        <td>{nodes?.waiting ?? 0}</td>
      </tr>
    ))
  })
}

/** The active revision, and every kept one (newest first) in a disclosure. */
function Revisions(p: { app: App; record: AppRecord | undefined }) {
  const revisions = p.record?.revisions ?? []
  return (
    <details>
      {/* An id: htmx gives focus back to it when the live view replaces the app's row. */}
      <summary id={`${rowId('app', p.app.name)}-revisions`}>
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

function nodeRows(d: DashboardData): Row[] {
  return Object.entries(d.pool.apps).flatMap(([app, s]) =>
    s.nodes.map((n) =>
      row(rowId('node', n.id), (id) => (
        <tr id={id}>
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
    ),
  )
}

function Legend() {
  return (
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
  )
}

function coldStartRows(d: DashboardData): Row[] {
  return d.coldStarts.map((c) =>
    once(rowId('cold', c.invocationId), (id) => (
      <tr data-invocation={c.invocationId} id={id}>
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

/** A cold one links to its waterfall while that is kept (the last 100 of 1000 invocations). */
function invocationRows(d: DashboardData): Row[] {
  const kept = new Set(d.coldStarts.map((c) => c.invocationId))
  return d.invocations.map((i) => {
    const start = !i.cold ? 'warm' : kept.has(i.id) ? 'linked' : 'cold'
    return once(
      rowId('invocation', i.id),
      (id) => (
        <tr id={id} data-invocation={i.id} class={i.status >= 500 ? 'failed' : undefined}>
          <th scope="row">{time(i.time)}</th>
          <td>{i.app}</td>
          <td>{i.function}</td>
          <td>{i.trigger}</td>
          <td>{i.status}</td>
          <td data-figure="duration">{i.durationMs.toFixed(1)}</td>
          <td>
            {start === 'linked' ? (
              <a href={`#${rowId('cold', i.id)}`}>cold start</a>
            ) : start === 'cold' ? (
              'cold start'
            ) : (
              'warm'
            )}
          </td>
          <td class="mono">{i.node ?? '–'}</td>
          <td>{i.revision === undefined ? '–' : `r${i.revision}`}</td>
        </tr>
      ),
      start,
    )
  })
}

function imageRows(d: DashboardData): Row[] {
  return d.profiles.map((p) => {
    const edge = d.edgeImage(p.reference, p.workload)
    return row(rowId('image', `${p.reference} ${p.workload}`), (id) => (
      <tr id={id}>
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
    ))
  })
}

function edgeRows(d: DashboardData): Row[] {
  return d.edges.map((e) =>
    row(rowId('edge', e.url), (id) => (
      <tr id={id}>
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
    )),
  )
}

function time(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
