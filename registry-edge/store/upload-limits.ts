import { OciError } from '../../runtime/oci/index.ts'

/**
 * What one edge lets clients hold in upload sessions (config `uploads`, README "Uploads"). A
 * session costs disk until it is finished, cancelled or expires, so an unauthenticated or careless
 * client could otherwise fill the disk with sessions it never finishes.
 */
export interface UploadLimits {
  /** The largest blob a session may grow to (413 SIZE_INVALID past it). */
  maxBlobBytes: number
  /** Sessions open at once, all clients together (429 TOOMANYREQUESTS past it). */
  maxSessions: number
  /** Sessions open at once per client: the user name when signed in, else the address. */
  maxSessionsPerClient: number
  /** A session that has received no request for this long is removed with its bytes. */
  idleTtlMs: number
  /** How often idle sessions are looked for while the edge runs. */
  sweepIntervalMs: number
}

/**
 * 4 GiB is the conversion's default `maxLayerBytes` (a larger layer could be stored but never
 * converted); 64 sessions per client leave room for a CI runner pushing several images at once
 * (skopeo pushes up to 6 layers in parallel); an hour without a request is far longer than any
 * client pauses between the chunks of one upload.
 */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  maxBlobBytes: 4 * 2 ** 30,
  maxSessions: 1024,
  maxSessionsPerClient: 64,
  idleTtlMs: 3_600_000,
  sweepIntervalMs: 60_000,
}

/** Why an upload was refused; the label of `thaw_edge_uploads_refused_total`. */
export type UploadRefusal = 'blob_too_large' | 'too_many_sessions' | 'too_many_client_sessions'

/** What the sessions report, for metrics. */
export interface UploadEvents {
  refused?(reason: UploadRefusal): void
  /** Sessions removed for being idle, while running or at startup. */
  expired?(count: number): void
}

/**
 * The spec's answer to "too many requests": 429 TOOMANYREQUESTS with `Retry-After` (RFC 9110
 * §10.2.3), which the spec says a 429 SHOULD carry. Sessions free up as pushes finish, so a
 * short wait is the honest hint; clients (containers/image) retry 429s.
 */
export class TooManyUploadsError extends OciError {
  readonly headers: Record<string, string>

  constructor(message: string, retryAfterSeconds = 10) {
    super('TOOMANYREQUESTS', message)
    this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

/**
 * 413 SIZE_INVALID for a blob past `maxBlobBytes`. No `Connection: close`: Node would close the
 * socket as soon as the answer is written, and a client still sending its body would get a reset
 * that can discard the 413 before it reads it. @hono/node-server instead reads and drops the rest
 * of the body for a bounded time and size (500 ms, 64 MiB), then closes: a lingering close.
 */
export class BlobTooLargeError extends OciError {
  constructor(limit: number) {
    super('SIZE_INVALID', `blob is larger than this edge accepts (${limit} bytes)`, {
      status: 413,
      detail: { limit },
    })
  }
}
