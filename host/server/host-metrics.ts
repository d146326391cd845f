import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { COLD_START_PHASES, type ColdStartTimings } from '../pool/cold-start.ts'
import type { EdgeStatus } from '../mount/source-set.ts'
import type { PoolNodeState } from '../pool/node-state.ts'

/**
 * The host's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * several hosts in one process, as in tests, do not collide).
 */
export class HostMetrics {
  readonly registry: Registry
  readonly requests: Counter<'app' | 'status'>
  readonly requestDuration: Histogram<'app'>
  readonly coldStarts: Counter<'app'>
  readonly coldStartPhase: Histogram<'phase'>
  readonly nodes: Gauge<'state'>
  readonly warmNodes: Gauge
  readonly connectionsRefused: Counter<'reason'>
  #edges: () => EdgeStatus[] = () => []

  constructor(registry = new Registry()) {
    this.registry = registry
    const registers = [registry]
    this.requests = new Counter({
      name: 'thaw_host_requests_total',
      help: 'Function requests answered, by app and status',
      labelNames: ['app', 'status'],
      registers,
    })
    this.requestDuration = new Histogram({
      name: 'thaw_host_request_duration_seconds',
      help: 'Request arrival to response head',
      labelNames: ['app'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.coldStarts = new Counter({ name: 'thaw_host_cold_starts_total', help: 'Cold starts', labelNames: ['app'], registers })
    this.coldStartPhase = new Histogram({
      name: 'thaw_host_cold_start_phase_seconds',
      help: `Cold start time by phase (${COLD_START_PHASES.join(', ')})`,
      labelNames: ['phase'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    this.nodes = new Gauge({ name: 'thaw_host_nodes', help: 'Nodes of apps by state', labelNames: ['state'], registers })
    this.warmNodes = new Gauge({ name: 'thaw_host_warm_nodes', help: 'Warm nodes ready in the pool', registers })
    this.connectionsRefused = new Counter({
      name: 'thaw_host_connections_refused_total',
      help: 'Connections closed at once: over the cap in all (total) or per address (per_address)',
      labelNames: ['reason'],
      registers,
    })
    // The edges, read from the mounts at each scrape (nearest edge: host/mount/source-set.ts).
    const edges = this
    const edgeGauge = (name: string, help: string, value: (e: EdgeStatus) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['edge'],
        registers,
        collect() {
          this.reset()
          for (const e of edges.#edges()) {
            const v = value(e)
            if (v !== undefined) this.set({ edge: e.url }, v)
          }
        },
      })
    edgeGauge('thaw_host_edge_healthy', '1 while the edge answers, 0 while it is skipped', (e) => Number(e.healthy))
    edgeGauge('thaw_host_edge_preferred', '1 for the edge tried first (the fastest healthy one)', (e) => Number(e.preferred))
    edgeGauge('thaw_host_edge_rtt_seconds', 'Round-trip time to the edge (GET /v2/, moving average)', (e) => e.rttSeconds)
    edgeGauge(
      'thaw_host_edge_throughput_bytes_per_second',
      'Recent throughput of range reads from the edge (moving average)',
      (e) => e.bytesPerSecond,
    )
  }

  /** Where the edge gauges read from at each scrape. */
  watchEdges(edges: () => EdgeStatus[]): void {
    this.#edges = edges
  }

  coldStart(app: string, t: ColdStartTimings): void {
    this.coldStarts.inc({ app })
    for (const phase of COLD_START_PHASES) this.coldStartPhase.observe({ phase }, t[phase] / 1000)
  }

  nodeState(from: PoolNodeState, to: PoolNodeState): void {
    if (from !== 'warm') this.nodes.dec({ state: from })
    if (to !== 'recycled' && to !== 'failed') this.nodes.inc({ state: to })
  }
}
