import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mayReadMetrics } from '../../../host/server/metrics-access.ts'

const MASTER = 'the-master-key-of-this-host'
const METRICS = 'the-metrics-key-of-this-host'

describe('mayReadMetrics', () => {
  let server: Server
  let url: string
  beforeAll(async () => {
    // A real server whose only answer is the decision, for real requests' headers.
    server = createServer((req, res) => {
      res.statusCode = mayReadMetrics(req, { master: MASTER, metrics: METRICS }) ? 200 : 401
      res.end()
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  it.each([
    // Prometheus's `authorization: { credentials_file }` (type Bearer by default)
    ['the metrics key as a bearer token', { authorization: `Bearer ${METRICS}` }, '', 200],
    ['the master key as a bearer token', { authorization: `Bearer ${MASTER}` }, '', 200],
    ['the scheme in any case', { authorization: `bearer ${METRICS}` }, '', 200],
    // as the admin API takes keys
    ['the metrics key in x-functions-key', { 'x-functions-key': METRICS }, '', 200],
    ['the master key in x-functions-key', { 'x-functions-key': MASTER }, '', 200],
    // refused
    ['no key', {}, '', 401],
    ['a wrong key', { authorization: 'Bearer not-a-key-of-this-host' }, '', 401],
    ['a key that only starts like the right one', { authorization: `Bearer ${METRICS}x` }, '', 401],
    ['the key as Basic credentials', { authorization: `Basic ${btoa(`x:${METRICS}`)}` }, '', 401],
    ['the key without a scheme', { authorization: METRICS }, '', 401],
    // scrape URLs end up in target lists and logs: never a key in the query
    ['the master key in ?code=', {}, `?code=${MASTER}`, 401],
  ])('with %s answers %s', async (_, headers, query, status) => {
    expect((await fetch(`${url}${query}`, { headers })).status).toBe(status)
  })

  it('takes the master key alone when there is no metrics key', async () => {
    const master = { authorization: `Bearer ${MASTER}` }
    const only = createServer((req, res) => {
      res.statusCode = mayReadMetrics(req, { master: MASTER }) ? 200 : 401
      res.end()
    })
    only.listen(0, '127.0.0.1')
    await once(only, 'listening')
    const at = `http://127.0.0.1:${(only.address() as AddressInfo).port}/metrics`
    const statuses = [
      (await fetch(at, { headers: master })).status,
      (await fetch(at, { headers: { authorization: `Bearer ${METRICS}` } })).status,
    ]
    only.closeAllConnections()
    await new Promise((r) => only.close(r))
    expect(statuses).toEqual([200, 401])
  })
})
