/**
 * What a host knows of one edge's speed: round-trip time (a `GET /v2/` probe, time to the
 * response head) and recent throughput (range reads of 64 KiB or more, bytes over the call's
 * time), each a moving average (EWMA, weight 0.3 on the newest sample) so one slow answer on a
 * busy machine does not swing the choice.
 */
export class EdgeSpeed {
  rttMs: number | undefined
  bytesPerSecond: number | undefined
  probes = 0
  probeFailures = 0

  rtt(ms: number): void {
    this.probes++
    this.rttMs = ewma(this.rttMs, ms)
  }

  transfer(bytes: number, ms: number): void {
    if (bytes < MIN_TRANSFER_BYTES || ms <= 0) return
    this.bytesPerSecond = ewma(this.bytesPerSecond, (bytes * 1000) / ms)
  }

  /**
   * Milliseconds to fetch a 1 MiB run from this edge (what a cold start's reads mostly are):
   * one round trip plus the bytes at the recent throughput. Undefined before the first probe.
   */
  cost(): number | undefined {
    if (this.rttMs === undefined) return undefined
    const transfer = this.bytesPerSecond ? (RUN_BYTES * 1000) / this.bytesPerSecond : 0
    return this.rttMs + transfer
  }
}

const WEIGHT = 0.3
const MIN_TRANSFER_BYTES = 64 * 1024
const RUN_BYTES = 1024 * 1024

function ewma(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous + WEIGHT * (sample - previous)
}
