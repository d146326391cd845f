import type { Digest } from '../../runtime/oci/index.ts'

/** Touches remembered at most (oldest forgotten first): bounds what a storm of HEADs can cost. */
const MAX_REMEMBERED = 200_000

/**
 * What keeps garbage collection (store-gc.ts) from deleting content a push is using.
 *
 * Every digest the store is asked about or links (a blob HEAD, a mount, a finished upload, a
 * manifest PUT and the check of its references) is `touch`ed, and the time remembered: a digest
 * touched within the grace period is live for a collection whatever its mark found, so a client
 * that HEADs a blob (the store has it) and PUTs its manifest within the grace period finds the
 * blob there. A touch also waits for a removal of that digest already under way, so a client
 * whose HEAD comes during one sees the blob gone (404, and uploads it again) instead of linking
 * content that is about to disappear. The sweep removes a digest only through `remove`, whose
 * check and start of the removal happen in one synchronous step: no touch falls between them.
 */
export class SweepGuard {
  readonly #touched = new Map<Digest, number>()
  readonly #removing = new Map<Digest, Promise<unknown>>()

  /** Marks the digests live as of now and waits for their removal, if one started. */
  async touch(...digests: Digest[]): Promise<void> {
    const now = Date.now()
    for (const d of digests) {
      this.#touched.delete(d) // re-inserted last: the map stays in touch order
      this.#touched.set(d, now)
    }
    for (const [d] of this.#touched) {
      if (this.#touched.size <= MAX_REMEMBERED) break
      this.#touched.delete(d)
    }
    await Promise.all(digests.map((d) => this.#removing.get(d)?.catch(() => {})))
  }

  /** Whether `digest` was touched at or after `since` (ms since the epoch). */
  touchedSince(digest: Digest, since: number): boolean {
    return (this.#touched.get(digest) ?? -Infinity) >= since
  }

  /** Forgets touches older than `before`; they no longer protect anything. */
  forgetBefore(before: number): void {
    for (const [d, at] of this.#touched) {
      if (at >= before) break
      this.#touched.delete(d)
    }
  }

  /**
   * Runs `removal` unless `digest` was touched at or after `since`; false when it was (nothing
   * removed).
   */
  async remove(digest: Digest, since: number, removal: () => Promise<unknown>): Promise<boolean> {
    if (this.touchedSince(digest, since)) return false
    const running = removal()
    this.#removing.set(digest, running)
    try {
      await running
    } finally {
      if (this.#removing.get(digest) === running) this.#removing.delete(digest)
    }
    return true
  }
}
