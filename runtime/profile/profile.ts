import { z } from 'zod'
import { ThawError } from '../errors.ts'
import { isDigest, type Digest } from '../oci/digest.ts'

/**
 * An access profile: the files (and byte ranges within them) a workload read while it started,
 * in first-access order, with times relative to the start. The host records one per cold start;
 * the edge merges several (union, ordered by median first access) and re-lays the image by it.
 *
 * JSON, media type application/vnd.thaw.profile.v1+json, pushed as a referrer of the image:
 *   { "version": 1, "subject": "sha256:…", "workload": "…", "runs": 3,
 *     "entries": [ { "path": "/usr/bin/node", "t": 12.5, "ranges": [[0, 131072], …] }, … ] }
 * `t` is milliseconds since the recording started; `ranges` are [offset, length] pairs within the
 * file, sorted and non-overlapping.
 */
export interface ProfileEntry {
  path: string
  t: number
  ranges: [number, number][]
}

export interface Profile {
  version: 1
  /** The original image manifest the profile was recorded against. */
  subject: Digest
  /** What ran: a hash of entrypoint, args and relevant settings; profiles merge per workload. */
  workload: string
  /** How many recordings were merged into this profile. */
  runs: number
  entries: ProfileEntry[]
}

/** Bounds that keep a hostile or runaway upload from costing the edge memory or time. */
export const PROFILE_LIMITS = { bytes: 8 * 1024 * 1024, entries: 200_000, rangesPerEntry: 4096 }

const digest = z.string().refine(isDigest, 'must be sha256:<64 lowercase hex>')
const range = z.tuple([z.number().int().nonnegative(), z.number().int().positive()])

const profileSchema = z.object({
  version: z.literal(1),
  subject: digest,
  workload: z.string().max(256),
  runs: z.number().int().positive().max(1_000_000),
  entries: z
    .array(
      z.object({
        path: z.string().min(1).max(4096).startsWith('/'),
        t: z.number().nonnegative().finite(),
        ranges: z.array(range).max(PROFILE_LIMITS.rangesPerEntry),
      }),
    )
    .max(PROFILE_LIMITS.entries),
})

/** Parses a profile from untrusted bytes. Throws `PROFILE_INVALID` (a user fault) with the reason. */
export function parseProfile(bytes: Uint8Array): Profile {
  if (bytes.length > PROFILE_LIMITS.bytes) {
    throw new ThawError('PROFILE_INVALID', `profile is larger than ${PROFILE_LIMITS.bytes} bytes`, {
      fault: 'user',
    })
  }
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (err) {
    throw new ThawError('PROFILE_INVALID', `profile is not JSON: ${(err as Error).message}`, {
      fault: 'user',
    })
  }
  const result = profileSchema.safeParse(json)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new ThawError(
      'PROFILE_INVALID',
      `invalid profile at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
      { fault: 'user' },
    )
  }
  const profile = result.data as Profile
  for (const entry of profile.entries) entry.ranges = normalizeRanges(entry.ranges)
  return profile
}

export function serializeProfile(profile: Profile): Buffer {
  return Buffer.from(JSON.stringify(profile))
}

/** Sorts ranges and merges overlapping or touching ones. */
export function normalizeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0])
  const out: [number, number][] = []
  for (const [off, len] of sorted) {
    const last = out[out.length - 1]
    if (last && off <= last[0] + last[1]) {
      last[1] = Math.max(last[1], off + len - last[0])
    } else {
      out.push([off, len])
    }
  }
  return out
}
