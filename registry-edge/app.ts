import { join } from 'node:path'
import { Hono } from 'hono'
import type { Registry } from 'prom-client'
import { OciError } from '../runtime/oci/index.ts'
import { authConfigSchema, type AuthConfigInput } from './auth/auth-config.ts'
import { authMiddleware } from './auth/auth-middleware.ts'
import { EdgeAuth } from './auth/edge-auth.ts'
import { tokenRoute } from './auth/token-route.ts'
import type { RegistryBackend } from './backend/registry-backend.ts'
import { parseWithZod } from './config/parse-with-zod.ts'
import type { EdgeEnv } from './edge-env.ts'
import type { EdgeExtension } from './edge-extension.ts'
import { errorResponse, isClientError, jsonResponse } from './http/http-errors.ts'
import { ManifestEvents, type ManifestPutListener } from './manifest-events.ts'
import { jsonLogger, type EdgeLogger } from './observability/edge-logger.ts'
import { EdgeMetrics } from './observability/edge-metrics.ts'
import { requestLog } from './observability/request-log.ts'
import { dispatchV2, matchV2Route } from './routes/v2-dispatch.ts'
import { KeptArtifactsBackend } from './proxy/kept-artifacts.ts'
import { openProxyBackend, type ProxyBackendOptions } from './proxy/proxy-backend.ts'
import { openDiskStore } from './store/disk-store.ts'
import type { UploadLimits } from './store/upload-limits.ts'
import { startConversion, type Conversion, type ConversionOptions } from './convert/conversion.ts'
import { EdgeGc, type GcPolicy } from './gc/edge-gc.ts'
import { gcRoute } from './gc/gc-route.ts'
import { GC_CONFIG_DEFAULTS, gcPolicyOf } from './config/gc-config.ts'

export interface RegistryEdgeOptions {
  /** Where images live. Give a backend, or a directory for the on-disk store (origin mode). */
  backend?: RegistryBackend
  store?: string
  /** Proxy mode: serve this upstream registry, caching under `store` (see proxy/). */
  upstream?: UpstreamOptions
  /** The edge's region, on every log line and metric. Default `local`. */
  region?: string
  /** Auth config (validated here); absent = auth off. See auth/auth-config.ts. */
  auth?: AuthConfigInput
  /** DELETE of manifests, tags and blobs. Default true (origin mode owns its content). */
  deletion?: boolean
  /**
   * Upload limits of the store or the proxy's upload buffer: blob size, open sessions in total
   * and per client, idle expiry (store/upload-limits.ts has the defaults). Ignored with `backend`.
   */
  uploads?: Partial<UploadLimits>
  logger?: EdgeLogger
  /** A prom-client registry for the edge's metrics; default a new one per edge. */
  metricsRegistry?: Registry
  extensions?: EdgeExtension[]
  onManifestPut?: ManifestPutListener
  /**
   * Convert pushed images into streaming artifacts (convert/conversion.ts) and serve the `_thaw`
   * status, settings, profiles and bundle endpoints. Off when absent. `dir` defaults to
   * `<store>/thaw`; with a `backend` instead of a store it must be given.
   */
  conversion?: ConversionOptions
  /**
   * Garbage collection (gc/edge-gc.ts): periodic every `intervalMs`, and on `POST /_thaw/gc`
   * from the edge's own machine. Defaults: config/gc-config.ts.
   */
  gc?: Partial<GcPolicy>
}

export type UpstreamOptions = Omit<ProxyBackendOptions, 'root' | 'metrics' | 'logger' | 'uploads'> & {
  /**
   * False: the edge's artifacts and profiles never go upstream; they are kept in `<store>/local`
   * (proxy/kept-artifacts.ts). Default true: upstream, unless it refuses the edge's pushes.
   */
  publishUpstream?: boolean
}

export interface RegistryEdge {
  readonly app: Hono<EdgeEnv>
  /** The app's fetch handler (web-standard Request → Response). */
  readonly fetch: Hono<EdgeEnv>['fetch']
  readonly backend: RegistryBackend
  readonly region: string
  readonly logger: EdgeLogger
  readonly metrics: EdgeMetrics
  /** The converter and its stores, when conversion is on. */
  readonly conversion: Conversion | undefined
  /** The garbage collector (`run({ dryRun })`). */
  readonly gc: EdgeGc
  /** Subscribes to manifest pushes; returns the unsubscribe function. */
  onManifestPut(listener: ManifestPutListener): () => void
  /** Closes the backend (if the edge opened it). Idempotent. */
  close(): Promise<void>
}

/**
 * A registry edge as a hono app: the OCI Distribution API under /v2/ over a backend, plus
 * /healthz, /metrics and, with auth on, /token. Features are middleware around the /v2 handlers:
 * request log → route match → auth → handler.
 *
 * @example
 *   const edge = await createRegistryEdge({ store: '/tmp/edge', region: 'eu-west' })
 *   const res = await edge.fetch(new Request('http://edge/v2/'))   // 200 {}
 *   await edge.close()
 */
export async function createRegistryEdge(options: RegistryEdgeOptions): Promise<RegistryEdge> {
  const region = options.region ?? 'local'
  const logger = options.logger ?? jsonLogger({ region })
  const metrics = new EdgeMetrics(region, options.metricsRegistry)
  const auth =
    options.auth && new EdgeAuth(parseWithZod(authConfigSchema, options.auth, 'auth'), metrics.loginEvents())
  const ownsBackend = !options.backend
  const backend = options.backend ?? (await openBackend(options, metrics, logger))
  const events = new ManifestEvents(logger)
  if (options.onManifestPut) events.subscribe(options.onManifestPut)
  const conversion = options.conversion
    ? await startConversion({
        backend,
        outputs: backend instanceof KeptArtifactsBackend ? backend : undefined,
        dir: conversionDir(options),
        logger,
        metricsRegistry: metrics.registry,
        options: options.conversion,
      })
    : undefined
  if (conversion) events.subscribe((event) => conversion.onManifestPut(event))
  const gc = new EdgeGc({
    backend,
    conversion,
    policy: { ...gcPolicyOf(GC_CONFIG_DEFAULTS), ...options.gc },
    metricsRegistry: metrics.registry,
    logger,
  })
  gc.start()
  const extensions = [...(options.extensions ?? []), ...(conversion?.extensions ?? [])]
  const deps = {
    backend,
    events,
    deletion: options.deletion ?? true,
    extensions,
    logger,
    policy: auth?.policy,
    onReferrersListed: conversion?.onReferrersListed,
  }

  const app = new Hono<EdgeEnv>()
  app.use('*', requestLog(logger, metrics))
  app.use('*', async (c, next) => {
    await next()
    c.res.headers.set('docker-distribution-api-version', 'registry/2.0')
  })
  app.onError((err, c) => {
    if (!isClientError(err)) logger.error('request failed', { method: c.req.method, path: c.req.path, error: describe(err) })
    return errorResponse(err)
  })
  app.notFound((c) => errorResponse(new OciError('UNSUPPORTED', `no such endpoint: ${c.req.path}`, { status: 404 })))
  app.get('/healthz', () => jsonResponse({ status: 'ok', region }))
  app.get('/metrics', async () => {
    const { text, contentType } = await metrics.render()
    return new Response(text, { headers: { 'content-type': contentType } })
  })
  if (auth) app.get('/token', (c) => tokenRoute(c, auth))
  app.post('/_thaw/gc', (c) => gcRoute(c, gc))
  app.use('/v2/*', matchV2Route)
  if (auth) app.use('/v2/*', authMiddleware(auth, extensions))
  app.all('/v2/*', dispatchV2(deps))

  let closed: Promise<void> | undefined
  return {
    app,
    fetch: app.fetch,
    backend,
    region,
    logger,
    metrics,
    conversion,
    gc,
    onManifestPut: (listener) => events.subscribe(listener),
    close: () =>
      (closed ??= (async () => {
        await gc.close()
        await conversion?.close()
        if (ownsBackend) await backend.close()
      })()),
  }
}

async function openBackend(options: RegistryEdgeOptions, metrics: EdgeMetrics, logger: EdgeLogger): Promise<RegistryBackend> {
  if (!options.store) throw new TypeError('createRegistryEdge needs a backend or a store directory')
  const uploads = options.uploads
  const uploadEvents = metrics.uploadEvents()
  if (!options.upstream) return openDiskStore(options.store, { uploads, uploadEvents })
  const { publishUpstream, ...proxy } = options.upstream
  const upstream = await openProxyBackend({ ...proxy, root: options.store, metrics, logger, uploads })
  // What the upstream will not take from the edge itself is kept here (proxy/kept-artifacts.ts).
  const local = await openDiskStore(join(options.store, 'local'), { uploadEvents })
  const metricsRegistry = metrics.registry
  return new KeptArtifactsBackend({ upstream, local, publishUpstream, logger, metricsRegistry })
}

function conversionDir(options: RegistryEdgeOptions): string {
  const dir = options.conversion?.dir ?? (options.store && join(options.store, 'thaw'))
  if (!dir) throw new TypeError('conversion over a given backend needs conversion.dir')
  return dir
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}
