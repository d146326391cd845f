import { Counter, type Registry } from 'prom-client'

/** What garbage collection freed, in the edge's registry (so it carries the `region` label). */
export class GcMetrics {
  readonly runs: Counter<'result'>
  readonly removed: Counter<'kind'>
  readonly freedBytes: Counter<'kind'>

  constructor(registry: Registry) {
    const registers = [registry]
    this.runs = new Counter({
      name: 'thaw_edge_gc_runs_total',
      help: 'Garbage collections run (not dry runs), by result (done, failed)',
      labelNames: ['result'],
      registers,
    })
    this.removed = new Counter({
      name: 'thaw_edge_gc_removed_total',
      help: 'What garbage collection removed, by kind (manifests, layer_links, blobs, profile_runs, bundles)',
      labelNames: ['kind'],
      registers,
    })
    this.freedBytes = new Counter({
      name: 'thaw_edge_gc_freed_bytes_total',
      help: 'Bytes garbage collection freed, by kind (blobs, profile_runs, bundles)',
      labelNames: ['kind'],
      registers,
    })
  }
}
