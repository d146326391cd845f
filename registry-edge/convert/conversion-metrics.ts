import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The converter's series, in the edge's registry (so they carry its `region` label). */
export class ConversionMetrics {
  readonly conversions: Counter<'result'>
  readonly duration: Histogram<never>
  readonly bytes: Counter<'direction'>
  readonly inProgress: Gauge<never>
  readonly queued: Gauge<never>

  constructor(registry: Registry) {
    const registers = [registry]
    this.conversions = new Counter({
      name: 'thaw_edge_conversions_total',
      help: 'Image conversions finished, by result (converted, skipped, failed, reused)',
      labelNames: ['result'],
      registers,
    })
    this.duration = new Histogram({
      name: 'thaw_edge_conversion_duration_seconds',
      help: 'Time from the start of a conversion to its artifact being stored',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    })
    this.bytes = new Counter({
      name: 'thaw_edge_conversion_bytes_total',
      help: 'Bytes of original layers read (in) and of streaming and index blobs written (out)',
      labelNames: ['direction'],
      registers,
    })
    this.inProgress = new Gauge({
      name: 'thaw_edge_conversions_in_progress',
      help: 'Conversions running now',
      registers,
    })
    this.queued = new Gauge({
      name: 'thaw_edge_conversions_queued',
      help: 'Conversions waiting for a worker',
      registers,
    })
  }
}
