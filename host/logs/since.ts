import { ThawError } from '../../runtime/errors.ts'

/** Where a log read starts: after a record number, or from a time (epoch ms). */
export type Since = { afterSeq: number } | { sinceMs: number } | Record<string, never>

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * `?since=` / `--since`: a duration back from now (`90s`, `5m`, `2h`, `1d`, as `docker logs
 * --since`), an ISO 8601 time, or `seq:N` (the records after record N). Absent: everything kept.
 */
export function parseSince(value: string | null | undefined, now = Date.now()): Since {
  if (value === null || value === undefined || value === '') return {}
  const d = /^(\d+(?:\.\d+)?)([smhd])$/.exec(value)
  if (d) return { sinceMs: now - Number(d[1]) * UNIT_MS[d[2]!]! }
  const s = /^seq:(\d+)$/.exec(value)
  if (s) return { afterSeq: Number(s[1]) }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value)
    if (!Number.isNaN(t)) return { sinceMs: t }
  }
  throw new ThawError(
    'SINCE_INVALID',
    `since "${value}": expected a duration (90s, 5m, 2h, 1d), an ISO time or seq:N`,
    { fault: 'user' },
  )
}
