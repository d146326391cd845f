import { Counter, type Registry } from 'prom-client'
import type { Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import type { ConvertOnAsk } from './convert-on-ask.ts'
import type { Converter } from './converter.ts'

const REFERRERS_TAG = /^sha256-[0-9a-f]{64}$/

export interface ScanSchedule {
  /** Between scans; the first runs at start. */
  intervalMs: number
  /** Repositories whose tags are scanned (exact names). */
  repositories: string[]
}

/**
 * Conversion before anyone asks (README.md "Images pushed elsewhere"): every `intervalMs` the
 * tags of the configured repositories are listed (upstream, in proxy mode) and each tagged
 * manifest the edge has no record of goes to the converter, as a host's first ask would send it
 * (convert-on-ask.ts, which also leaves alone what already has a record). So an image CI pushed
 * straight to the upstream is converted by the time its first host starts it.
 *
 * Scans run one at a time; a repository that fails (unknown, upstream down) is logged, counted
 * and scanned again next time, the others go on.
 */
export class ScheduledScan {
  readonly #o: {
    schedule: ScanSchedule
    backend: RegistryBackend
    converter: Converter
    onAsk: ConvertOnAsk
    logger: EdgeLogger
  }
  readonly #scans: Counter<'result'>
  readonly #found: Counter<never>
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #running: Promise<number> | undefined

  constructor(o: {
    schedule: ScanSchedule
    backend: RegistryBackend
    converter: Converter
    onAsk: ConvertOnAsk
    logger: EdgeLogger
    metricsRegistry: Registry
  }) {
    this.#o = o
    const registers = [o.metricsRegistry]
    this.#scans = new Counter({
      name: 'thaw_edge_scheduled_scans_total',
      help: "Scans of a configured repository's tags, by result (done, failed)",
      labelNames: ['result'],
      registers,
    })
    this.#found = new Counter({
      name: 'thaw_edge_scheduled_conversions_total',
      help: 'Tagged manifests a scheduled scan found with no conversion record and sent to the converter',
      registers,
    })
  }

  /** Scans now and then every `intervalMs`. */
  start(): void {
    if (this.#timer) return
    const tick = () => void this.scan()
    this.#timer = setInterval(tick, this.#o.schedule.intervalMs)
    this.#timer.unref()
    tick()
  }

  /** One scan of every repository (after the one running, if any); how many images it sent. */
  scan(): Promise<number> {
    this.#running ??= this.#scanAll().finally(() => (this.#running = undefined))
    return this.#running
  }

  /** Stops the schedule and waits for a scan running. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  async #scanAll(): Promise<number> {
    let sent = 0
    for (const repository of this.#o.schedule.repositories) {
      if (this.#closed) break
      try {
        sent += await this.#scanRepository(repository)
        this.#scans.inc({ result: 'done' })
      } catch (err) {
        this.#scans.inc({ result: 'failed' })
        this.#o.logger.warn('scheduled scan failed', { repository, error: String(err) })
      }
    }
    return sent
  }

  async #scanRepository(repository: string): Promise<number> {
    const { backend, converter, onAsk, logger } = this.#o
    const tags = await backend.listTags(repository)
    if (!tags) throw new Error(`repository ${repository} is not known`)
    const digests = new Set<Digest>()
    // Fallback tags (`sha256-<hex>`) hold referrers lists, not images.
    for (const tag of tags.filter((t) => !REFERRERS_TAG.test(t))) {
      const stored = await backend.getManifest(repository, { tag })
      if (stored) digests.add(stored.digest)
    }
    let sent = 0
    for (const manifest of digests) {
      if (await converter.states.get(repository, manifest)) continue
      logger.info('scheduled conversion', { repository, manifest })
      await onAsk.ask(repository, manifest)
      this.#found.inc()
      sent++
    }
    return sent
  }
}
