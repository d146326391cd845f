import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * The snapshotter's Prometheus metrics, in a registry of its own (as HostMetrics): gRPC calls by
 * method and code, remote Prepares by result (lazy: answered AlreadyExists over a lazy mount;
 * fallback: an ordinary snapshot to unpack into), snapshots made, and the snapshots now held.
 */
export class SnapshotterMetrics {
  readonly registry: Registry
  readonly calls: Counter<'method' | 'code'>
  readonly callDuration: Histogram<'method'>
  readonly remotePrepares: Counter<'result'>
  readonly snapshots: Counter<'kind'>
  readonly held: Gauge<'kind'>

  constructor(registry = new Registry()) {
    this.registry = registry
    const registers = [registry]
    this.calls = new Counter({
      name: 'thaw_snapshotter_calls_total',
      help: 'Snapshots API calls answered, by method and gRPC status code',
      labelNames: ['method', 'code'],
      registers,
    })
    this.callDuration = new Histogram({
      name: 'thaw_snapshotter_call_duration_seconds',
      help: 'Snapshots API call duration, by method',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.remotePrepares = new Counter({
      name: 'thaw_snapshotter_remote_prepares_total',
      help: 'Prepares with remote-snapshot labels: lazy (AlreadyExists over the lazy mount) or fallback (unpacked)',
      labelNames: ['result'],
      registers,
    })
    this.snapshots = new Counter({
      name: 'thaw_snapshotter_snapshots_created_total',
      help: 'Snapshots made, by kind (active, view, committed, remote)',
      labelNames: ['kind'],
      registers,
    })
    this.held = new Gauge({
      name: 'thaw_snapshotter_snapshots',
      help: 'Snapshots held now, by kind',
      labelNames: ['kind'],
      registers,
    })
  }
}
