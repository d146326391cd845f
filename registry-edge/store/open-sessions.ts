import type { UploadLimits, UploadRefusal } from './upload-limits.ts'

interface OpenSession {
  client: string
  /** When the session last received a request (ms since the epoch). */
  lastActive: number
}

/**
 * The upload sessions that exist, in memory: who opened each and when it was last used. Counts
 * are checked and a slot taken in one synchronous step, so concurrent POSTs cannot both take
 * the last slot.
 */
export class OpenSessions {
  readonly #sessions = new Map<string, OpenSession>()
  readonly #perClient = new Map<string, number>()

  get size(): number {
    return this.#sessions.size
  }

  /** Takes a slot for `id`, or says which limit is in the way. */
  admit(
    id: string,
    client: string,
    now: number,
    limits: Pick<UploadLimits, 'maxSessions' | 'maxSessionsPerClient'>,
  ): UploadRefusal | undefined {
    if (this.#sessions.size >= limits.maxSessions) return 'too_many_sessions'
    if ((this.#perClient.get(client) ?? 0) >= limits.maxSessionsPerClient) {
      return 'too_many_client_sessions'
    }
    this.add(id, client, now)
    return undefined
  }

  /** Records a session that already exists (found on disk at startup). */
  add(id: string, client: string, lastActive: number): void {
    if (this.#sessions.has(id)) return
    this.#sessions.set(id, { client, lastActive })
    this.#perClient.set(client, (this.#perClient.get(client) ?? 0) + 1)
  }

  touch(id: string, now: number): void {
    const session = this.#sessions.get(id)
    if (session) session.lastActive = Math.max(session.lastActive, now)
  }

  remove(id: string): void {
    const session = this.#sessions.get(id)
    if (!session) return
    this.#sessions.delete(id)
    const left = (this.#perClient.get(session.client) ?? 1) - 1
    if (left > 0) this.#perClient.set(session.client, left)
    else this.#perClient.delete(session.client)
  }

  isIdle(id: string, now: number, ttlMs: number): boolean {
    const session = this.#sessions.get(id)
    return session !== undefined && now - session.lastActive > ttlMs
  }

  /** Sessions without a request for more than `ttlMs`. */
  idle(now: number, ttlMs: number): string[] {
    return [...this.#sessions.keys()].filter((id) => this.isIdle(id, now, ttlMs))
  }
}
