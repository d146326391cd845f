import { Pool } from 'undici'

/** One request a well-behaved client makes: it sends it whole and reads the answer whole. */
export interface LoadRequest {
  method: 'GET' | 'POST'
  path: string
  body?: string
}

export interface LoadReport {
  /** Answers by status. */
  statuses: Record<number, number>
  /** Requests that got no answer (a reset, a broken connection), with the error code. */
  errors: Record<string, number>
  /** Answers each client got, in client order. */
  perClient: number[]
  /** Answers that were not 200, first few of each status, with their body (to say why). */
  samples: { status: number; path: string; body: string }[]
}

/**
 * `clients` well-behaved clients, each making one request after the other until `until()` is
 * false, spread evenly over `addresses` (local addresses to connect from, one undici pool each,
 * a connection per client: per-address connection caps count them as different clients). A
 * client never gives up on a request: a request that gets no answer shows as the server's
 * failure (a 504 at the app's request timeout, a reset), never as the client's impatience.
 */
export async function runWellBehaved(o: {
  origin: string
  clients: number
  addresses: string[]
  request: (client: number, n: number) => LoadRequest
  until: () => boolean
}): Promise<LoadReport> {
  const perAddress = Math.ceil(o.clients / o.addresses.length)
  const pools = o.addresses.map(
    (localAddress) =>
      new Pool(o.origin, {
        connections: perAddress,
        localAddress,
        headersTimeout: 0, // no client-side timeouts: the server must answer
        bodyTimeout: 0,
        pipelining: 1,
      }),
  )
  const report: LoadReport = { statuses: {}, errors: {}, perClient: [], samples: [] }
  const client = async (i: number) => {
    const pool = pools[i % pools.length]!
    let n = 0
    while (o.until()) {
      const r = o.request(i, n)
      try {
        const res = await pool.request({
          method: r.method,
          path: r.path,
          body: r.body,
          headers: r.body ? { 'content-type': 'text/plain' } : {},
        })
        const body = await res.body.text()
        report.statuses[res.statusCode] = (report.statuses[res.statusCode] ?? 0) + 1
        const seen = report.samples.filter((s) => s.status === res.statusCode).length
        if (res.statusCode !== 200 && seen < 3)
          report.samples.push({ status: res.statusCode, path: r.path, body: body.slice(0, 300) })
      } catch (err) {
        const code = (err as { code?: string }).code ?? (err as Error).message
        report.errors[code] = (report.errors[code] ?? 0) + 1
      }
      n++
    }
    report.perClient[i] = n
  }
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)))
  } finally {
    await Promise.all(pools.map((p) => p.destroy()))
  }
  return report
}
