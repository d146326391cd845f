import type { Descriptor, Digest } from '../runtime/oci/index.ts'
import type { EdgeLogger } from './observability/edge-logger.ts'

/** Sent after a manifest is stored and visible (the converter subscribes to these). */
export interface ManifestPutEvent {
  repository: string
  digest: Digest
  mediaType: string
  bytes: Uint8Array
  /** The tag it was pushed by, if any. */
  tag?: string
  /** Its `subject`, if it is a referrer. */
  subject?: Descriptor
}

export type ManifestPutListener = (event: ManifestPutEvent) => void | Promise<void>

/**
 * Fan-out of manifest-put events. Listeners are called once the manifest is stored, and are not
 * awaited: they never hold up the push's response. A listener that throws or rejects is logged;
 * it affects neither the push nor the other listeners.
 */
export class ManifestEvents {
  readonly #listeners = new Set<ManifestPutListener>()
  readonly #logger: EdgeLogger

  constructor(logger: EdgeLogger) {
    this.#logger = logger
  }

  /** Returns the function that unsubscribes. */
  subscribe(listener: ManifestPutListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  emit(event: ManifestPutEvent): void {
    for (const listener of this.#listeners) {
      const fail = (err: unknown) =>
        this.#logger.error('manifest listener failed', { digest: event.digest, error: String(err) })
      try {
        void Promise.resolve(listener(event)).catch(fail)
      } catch (err) {
        fail(err)
      }
    }
  }
}
