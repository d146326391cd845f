import { z } from 'zod'
import { ThawError } from '../errors.ts'
import { isDigest, type Digest } from '../oci/digest.ts'

/**
 * The prefetch bundle (application/vnd.thaw.bundle.v1): every startup byte of an image in one
 * response, framed so a reader can use each record as soon as it has arrived.
 *
 *   offset 0       8 bytes   magic "THAWBDL1"
 *   offset 8       4 bytes   H, the header's length (u32, big-endian)
 *   offset 12      H bytes   header, UTF-8 JSON:
 *                              { "version": 1, "artifact": "sha256:…", "profile": "sha256:…",
 *                                "start": { "artifact": "<base64>", "config": "<base64>",
 *                                           "imageConfig": "<base64>" },
 *                                "records": [ { "blob": "sha256:…", "offset": 0, "length": 91234 }, … ] }
 *   offset 12+H    the records' bytes, back to back, in header order
 *
 * `start` (optional) carries the artifact manifest, its config and the image's config, so that with
 * record 0 a host has everything it needs to mount: a cold start with a profile makes this one
 * request once it knows the manifest digest. Each is checked against a digest the host already
 * trusts (`artifact`, then the artifact's and the image manifest's descriptors).
 * Record 0 is the artifact's whole index blob (the binary index when the artifact has one). Every other record is a run of whole frames of one
 * streaming blob (`offset`/`length` address the blob's compressed bytes, frame-aligned), in global
 * first-access order. The bundle is deterministic for (artifact, profile), so its byte offsets are
 * stable and a broken transfer resumes with `Range: bytes=<position>-`. Readers verify every frame
 * against the index as with any other range; the bundle adds no trust.
 */
export const BUNDLE_MAGIC = 'THAWBDL1'
const PREFIX_BYTES = 12
/** A header larger than this is refused (a 1 GB image has ~10 k frame runs, ~1 MiB of JSON). */
export const MAX_BUNDLE_HEADER_BYTES = 16 * 1024 * 1024
/** No record is larger than this: the decoder buffers one record at a time. */
export const MAX_BUNDLE_RECORD_BYTES = 64 * 1024 * 1024

export interface BundleRecord {
  blob: Digest
  offset: number
  length: number
}

export interface BundleHeader {
  version: 1
  /** The streaming artifact manifest the records belong to. */
  artifact: Digest
  /** The merged profile that chose them. */
  profile: Digest
  /** What a host needs besides record 0 to mount without another request (base64 bytes). */
  start?: { artifact: string; config: string; imageConfig: string }
  records: BundleRecord[]
}

export interface BundleRecordData {
  /** Position in `header.records`. */
  index: number
  record: BundleRecord
  bytes: Uint8Array
}

const digest = z.string().refine(isDigest, 'must be sha256:<64 lowercase hex>')
const base64 = z.string().max(8 * 2 ** 20).regex(/^[A-Za-z0-9+/]*={0,2}$/)
const headerSchema = z.object({
  version: z.literal(1),
  artifact: digest,
  profile: digest,
  start: z.object({ artifact: base64, config: base64, imageConfig: base64 }).optional(),
  records: z.array(
    z.object({
      blob: digest,
      offset: z.number().int().nonnegative(),
      length: z.number().int().positive().max(MAX_BUNDLE_RECORD_BYTES),
    }),
  ),
})

/** The bytes that precede the records: magic, header length, header. */
export function encodeBundlePrefix(header: BundleHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(PREFIX_BYTES + json.length)
  out.set(new TextEncoder().encode(BUNDLE_MAGIC), 0)
  new DataView(out.buffer).setUint32(8, json.length)
  out.set(json, PREFIX_BYTES)
  return out
}

/** Total bundle size: prefix plus every record. */
export function bundleSize(header: BundleHeader): number {
  return encodeBundlePrefix(header).length + header.records.reduce((n, r) => n + r.length, 0)
}

/**
 * Incremental bundle parser: push the body's chunks as they arrive, get each record once it is
 * complete. `position` is how many bundle bytes were consumed, for a `Range` resume.
 */
export class BundleDecoder {
  #header: BundleHeader | undefined
  #pending: Uint8Array[] = []
  #pendingBytes = 0
  #next = 0
  #position = 0

  get header(): BundleHeader | undefined {
    return this.#header
  }

  get position(): number {
    return this.#position
  }

  get done(): boolean {
    return this.#header !== undefined && this.#next === this.#header.records.length
  }

  push(chunk: Uint8Array): BundleRecordData[] {
    if (chunk.length === 0) return []
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    this.#position += chunk.length
    const out: BundleRecordData[] = []
    if (!this.#header && !this.#readHeader()) return out
    for (;;) {
      const record = this.#header!.records[this.#next]
      if (!record) {
        if (this.#pendingBytes > 0) throw bundleInvalid('bytes after the last record')
        return out
      }
      if (this.#pendingBytes < record.length) return out
      out.push({ index: this.#next++, record, bytes: this.#take(record.length) })
    }
  }

  /** Call at the end of the body: throws if the bundle was cut short. */
  end(): void {
    if (!this.done) {
      const expected = this.#header ? bundleSize(this.#header) : PREFIX_BYTES
      throw bundleInvalid(`bundle truncated at ${this.#position} of ${expected} bytes`)
    }
  }

  #readHeader(): boolean {
    if (this.#pendingBytes < PREFIX_BYTES) return false
    const prefix = this.#peek(PREFIX_BYTES)
    if (new TextDecoder().decode(prefix.subarray(0, 8)) !== BUNDLE_MAGIC) {
      throw bundleInvalid('not a thaw bundle (bad magic)')
    }
    const length = new DataView(prefix.buffer, prefix.byteOffset).getUint32(8)
    if (length > MAX_BUNDLE_HEADER_BYTES)
      throw bundleInvalid(`header of ${length} bytes is too large`)
    if (this.#pendingBytes < PREFIX_BYTES + length) return false
    this.#take(PREFIX_BYTES)
    this.#header = parseBundleHeader(this.#take(length))
    return true
  }

  #peek(n: number): Uint8Array {
    const first = this.#pending[0]!
    if (first.length >= n) return first.subarray(0, n)
    const joined = concat(this.#pending, this.#pendingBytes)
    this.#pending = [joined]
    return joined.subarray(0, n)
  }

  #take(n: number): Uint8Array {
    const bytes = this.#peek(n)
    const first = this.#pending[0]!
    if (first.length === n) this.#pending.shift()
    else this.#pending[0] = first.subarray(n)
    this.#pendingBytes -= n
    return bytes
  }
}

export function parseBundleHeader(bytes: Uint8Array): BundleHeader {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw bundleInvalid(`header is not JSON: ${(err as Error).message}`)
  }
  const result = headerSchema.safeParse(value)
  if (!result.success) throw bundleInvalid(`header: ${z.prettifyError(result.error)}`)
  return result.data as BundleHeader
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

function bundleInvalid(message: string): ThawError {
  return new ThawError('BUNDLE_INVALID', message, { fault: 'system' })
}
