import { ThawError } from '../../runtime/errors.ts'
import { DEFAULT_LIMITS, type AppLimits } from './app-spec.ts'

/** A function of a revision as its first node loaded it (the health gate), for lists and URLs. */
export interface RevisionFunction {
  name: string
  /** The route template with the route prefix, as func start shows it: `api/items/{id?}`. */
  path: string
  /** Upper-case; null: any method. */
  methods: string[] | null
  authLevel: string
}

/** What a revision runs and who may call it: everything a change can touch. */
export interface RevisionContent {
  /** By digest when `thaw deploy` made it: `127.0.0.1:5000/apps/hello@sha256:…`. */
  image: string
  settings: Record<string, string>
  keys: Record<string, string>
  limits: AppLimits
}

/** Why a revision was made (shown in `thaw apps show` and the dashboard). */
export type RevisionCause =
  | { kind: 'create' | 'deploy' | 'settings' | 'keys' | 'limits' | 'replace' }
  | { kind: 'rollback'; to: number }

/** One immutable revision of an app. */
export interface Revision extends RevisionContent {
  /** 1, 2, 3… per app; never reused. */
  number: number
  createdAt: string
  cause: RevisionCause
  /** The functions its first node loaded; absent when it went live without a health gate. */
  functions?: RevisionFunction[]
  /** Set when its health gate failed: the error, and the node's log lines. It never served. */
  failed?: { error: string; logs: string[] }
}

/** An app as the store keeps it: its revisions (newest first) and the one that serves. */
export interface AppRecord {
  name: string
  createdAt: string
  active: number
  revisions: Revision[]
}

/**
 * A change to an app, applied to its active revision (or to revision `from`, for a rollback).
 * Merge rules: `settings` and `keys` are merged in (a name given wins), `unsetSettings` and
 * `unsetKeys` remove names, `limits` are merged over the current ones; `replace*` replace a
 * whole field (the admin API's PUT). Anything not named carries over.
 */
export interface RevisionChange {
  cause: RevisionCause
  image?: string
  settings?: Record<string, string>
  unsetSettings?: string[]
  replaceSettings?: Record<string, string>
  keys?: Record<string, string>
  unsetKeys?: string[]
  replaceKeys?: Record<string, string>
  limits?: Partial<AppLimits>
  replaceLimits?: Partial<AppLimits>
}

/**
 * The content of the revision a change makes. `base` is the active revision (undefined for a
 * new app, which needs an image). A rollback takes the image, settings and limits of revision
 * `from` but keeps the current keys: a key renewed since (maybe because it leaked) stays renewed.
 */
export function applyChange(
  base: RevisionContent | undefined,
  change: RevisionChange,
  from?: RevisionContent,
): RevisionContent {
  const start = from ? { ...from, keys: base?.keys ?? from.keys } : base
  const image = change.image ?? start?.image
  if (image === undefined) {
    throw new ThawError('APP_INVALID', 'invalid app: a new app needs an image', { fault: 'user' })
  }
  return {
    image,
    settings: merged(
      start?.settings,
      change.replaceSettings,
      change.settings,
      change.unsetSettings,
    ),
    keys: merged(start?.keys, change.replaceKeys, change.keys, change.unsetKeys),
    limits: {
      ...DEFAULT_LIMITS,
      ...(change.replaceLimits ?? start?.limits),
      ...change.limits,
    },
  }
}

function merged(
  current: Record<string, string> | undefined,
  replace: Record<string, string> | undefined,
  add: Record<string, string> | undefined,
  remove: string[] | undefined,
): Record<string, string> {
  const out = { ...(replace ?? current), ...add }
  for (const name of remove ?? []) delete out[name]
  return out
}

/**
 * Whether two revisions run the same way (image, settings, limits): a change of keys alone
 * (checked at the host's door, not in the node) keeps the running nodes.
 */
export function sameRuntime(a: RevisionContent, b: RevisionContent): boolean {
  return (
    a.image === b.image &&
    sameRecord(a.settings, b.settings) &&
    JSON.stringify(sortedLimits(a.limits)) === JSON.stringify(sortedLimits(b.limits))
  )
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k])
}

function sortedLimits(l: AppLimits): unknown[] {
  return Object.keys(l)
    .sort()
    .map((k) => [k, l[k as keyof AppLimits]])
}

/** How many revisions an app keeps (the active one is always kept besides). */
export const REVISION_HISTORY = 20

/**
 * The history after adding `next` (newest first): at most REVISION_HISTORY revisions, and the
 * active one even when it is older than those (a run of failed deploys never pushes it out).
 */
export function boundedHistory(history: Revision[], next: Revision, active: number): Revision[] {
  const all = [next, ...history]
  const kept = all.slice(0, REVISION_HISTORY)
  if (!kept.some((r) => r.number === active)) {
    const live = all.find((r) => r.number === active)
    if (live) kept.push(live)
  }
  return kept
}
