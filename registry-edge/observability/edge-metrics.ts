import { Counter, Histogram, Registry } from 'prom-client'
import type { LoginEvents } from '../auth/login-limits.ts'
import type { UploadEvents } from '../store/upload-limits.ts'

/**
 * The edge's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * several edges in one process, as in tests, do not mix). Every series carries `region`.
 *
 * Cache and upstream series are recorded by the proxy backend (proxy/); the origin-mode disk
 * store has neither, so in origin mode they stay at zero.
 */
export class EdgeMetrics {
  readonly registry: Registry
  readonly requests: Counter<'method' | 'route' | 'status'>
  readonly requestDuration: Histogram<'method' | 'route'>
  readonly bytesServed: Counter<'kind'>
  readonly cacheHits: Counter<'layer'>
  readonly cacheMisses: Counter<never>
  readonly upstreamDuration: Histogram<'method'>
  readonly upstreamBytes: Counter<never>
  readonly uploadsRefused: Counter<'reason'>
  readonly uploadSessionsExpired: Counter<never>
  readonly passwordChecks: Counter<never>
  readonly loginsFailed: Counter<never>
  readonly loginsRefused: Counter<'by'>

  constructor(region: string, registry = new Registry()) {
    this.registry = registry
    registry.setDefaultLabels({ region })
    const registers = [registry]
    this.requests = new Counter({
      name: 'thaw_edge_requests_total',
      help: 'HTTP requests answered, by method, route kind and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    })
    this.requestDuration = new Histogram({
      name: 'thaw_edge_request_duration_seconds',
      help: 'Time from request to the last byte of the response',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    })
    this.bytesServed = new Counter({
      name: 'thaw_edge_bytes_served_total',
      help: 'Response body bytes of successful blob, manifest and _thaw extension (bundles, profiles, status) reads',
      labelNames: ['kind'],
      registers,
    })
    this.cacheHits = new Counter({
      name: 'thaw_edge_cache_hits_total',
      help: 'Blob chunk reads served from the proxy cache, by layer (memory, disk)',
      labelNames: ['layer'],
      registers,
    })
    this.cacheMisses = new Counter({
      name: 'thaw_edge_cache_misses_total',
      help: 'Blob chunk reads that waited for the upstream (proxy mode)',
      registers,
    })
    this.upstreamDuration = new Histogram({
      name: 'thaw_edge_upstream_duration_seconds',
      help: 'Latency of requests to the upstream registry (proxy mode)',
      labelNames: ['method'],
      registers,
    })
    this.upstreamBytes = new Counter({
      name: 'thaw_edge_upstream_bytes_total',
      help: 'Blob bytes received from the upstream registry (proxy mode)',
      registers,
    })
    this.uploadsRefused = new Counter({
      name: 'thaw_edge_uploads_refused_total',
      help: 'Uploads refused by a limit: blob_too_large, too_many_sessions, too_many_client_sessions',
      labelNames: ['reason'],
      registers,
    })
    this.uploadSessionsExpired = new Counter({
      name: 'thaw_edge_upload_sessions_expired_total',
      help: 'Upload sessions removed with their bytes after uploadTtlSeconds without a request',
      registers,
    })
    this.passwordChecks = new Counter({
      name: 'thaw_edge_password_checks_total',
      help: 'Passwords checked with scrypt, against a user\'s hash or, for an unknown user, a dummy one',
      registers,
    })
    this.loginsFailed = new Counter({
      name: 'thaw_edge_logins_failed_total',
      help: 'Basic logins with a wrong password or an unknown user',
      registers,
    })
    this.loginsRefused = new Counter({
      name: 'thaw_edge_logins_refused_total',
      help: 'Basic logins answered 429 without a check: the address or user is backing off, or too many checks wait (busy)',
      labelNames: ['by'],
      registers,
    })
  }

  /** The login checks' events, counted here. */
  loginEvents(): LoginEvents {
    return {
      checked: () => this.passwordChecks.inc(),
      failed: () => this.loginsFailed.inc(),
      refused: (by) => this.loginsRefused.inc({ by }),
    }
  }

  /** The upload sessions' events, counted here. */
  uploadEvents(): UploadEvents {
    return {
      refused: (reason) => this.uploadsRefused.inc({ reason }),
      expired: (count) => this.uploadSessionsExpired.inc(count),
    }
  }

  /** The exposition text and its content type, for GET /metrics. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType }
  }
}
