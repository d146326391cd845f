import { rm } from 'node:fs/promises'
import { GENERATION_ANNOTATION } from '../../runtime/artifact/index.ts'
import { MediaType, parseManifest, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import { subjectOf, type DiskStore } from './disk-store.ts'
import { blobInventory, repositoryInventory, type RepositoryInventory } from './store-inventory.ts'

export interface StoreGcPolicy {
  /** Content and links younger than this are never collected (ms). */
  graceMs: number
  /** Streaming artifact generations kept per image, newest first (at least 1). */
  keepGenerations: number
  /**
   * Also remove manifests that no tag reaches (directly, as a child of a tagged index, or as a
   * referrer of a reached manifest), once older than the grace period. Default off, as in
   * distribution (`garbage-collect --delete-untagged`).
   */
  deleteUntagged?: boolean
}

/** A manifest the collection removes, and why. */
export interface CollectedManifest {
  repository: string
  digest: Digest
  why: 'superseded-generation' | 'subject-deleted' | 'untagged'
  /** The image it referred to (an untagged image: itself). */
  subject: Digest
}

export interface StoreGcReport {
  manifests: CollectedManifest[]
  /** `_layers` links of blobs no manifest of their repository references. */
  layerLinks: number
  blobs: { count: number; bytes: number }
  /** Manifests that stay (all repositories): what bundles and other caches may still need. */
  live: Set<Digest>
}

/**
 * Garbage collection of the origin store, mark and sweep, online (see the registry-edge README):
 *
 * 1. Plan the manifests to remove: streaming artifacts beyond the newest `keepGenerations` of an
 *    image, once the generation that pushed each out of the window is older than the grace
 *    period (a host that mounted the old one had that long to move); and referrers (artifacts,
 *    profiles) whose subject manifest was deleted, once they are older than the grace period (the
 *    spec lets a referrer arrive before its subject). A tagged manifest is never removed.
 * 2. Mark: every other manifest revision of every repository, its config and layers.
 * 3. Sweep: a `_layers` link whose blob no manifest of the repository references, and a blob that
 *    nothing marks and no link keeps, both older than the grace period. Every removal goes
 *    through the store's SweepGuard: content a push touched within the grace period, or touches
 *    while the collection runs, stays.
 *
 * With `dryRun` nothing is removed and the report says what would be. Upload sessions are not
 * blobs yet: their bytes live under `uploads/` until they finish (touching their digest) or
 * expire (upload-sessions.ts); the collection leaves them alone.
 */
export async function collectStore(
  store: DiskStore,
  policy: StoreGcPolicy,
  options: {
    dryRun: boolean
    now?: number
    /**
     * Whether a subject this store lacks exists elsewhere (a proxy edge's kept store holds
     * referrers of the upstream's images). Default: only what the store holds exists.
     */
    subjectElsewhere?: (repository: string, subject: Digest) => Promise<boolean>
  },
): Promise<StoreGcReport> {
  const cutoff = (options.now ?? Date.now()) - policy.graceMs
  const { guard } = store
  guard.forgetBefore(cutoff)
  const names = await store.listRepositories()
  const repos = await Promise.all(names.map((n) => repositoryInventory(store.layout, n)))
  const manifests: CollectedManifest[] = []
  const elsewhere = options.subjectElsewhere ?? (async () => false)
  for (const repo of repos) {
    const planned = await planManifests(store, repo, policy, cutoff, elsewhere)
    if (policy.deleteUntagged) {
      const known = new Set(planned.map((m) => m.digest))
      for (const m of await planUntagged(store, repo, cutoff))
        if (!known.has(m.digest)) planned.push(m)
    }
    manifests.push(...planned)
  }
  const doomed = new Set(manifests.map((m) => `${m.repository}@${m.digest}`))

  const live = new Set<Digest>()
  const liveManifests = new Set<Digest>()
  const links: { repository: string; digest: Digest }[] = []
  const linked = new Set<Digest>()
  for (const repo of repos) {
    const repoLive = new Set<Digest>()
    for (const { digest } of repo.revisions) {
      if (doomed.has(`${repo.name}@${digest}`)) continue
      liveManifests.add(digest)
      for (const d of await referencedBy(store, repo.name, digest)) repoLive.add(d)
    }
    for (const d of repoLive) live.add(d)
    for (const link of repo.layerLinks) {
      if (repoLive.has(link.digest) || link.mtimeMs >= cutoff) linked.add(link.digest)
      else links.push({ repository: repo.name, digest: link.digest })
    }
  }
  const blobs = (await blobInventory(store.layout)).filter(
    (b) =>
      !live.has(b.digest) &&
      !linked.has(b.digest) &&
      b.mtimeMs < cutoff &&
      !guard.touchedSince(b.digest, cutoff),
  )
  const report: StoreGcReport = {
    manifests,
    layerLinks: 0,
    blobs: { count: 0, bytes: 0 },
    live: liveManifests,
  }
  if (options.dryRun) {
    report.layerLinks = links.length
    report.blobs = { count: blobs.length, bytes: blobs.reduce((n, b) => n + b.size, 0) }
    return report
  }
  for (const m of manifests) await store.deleteManifest(m.repository, m.digest)
  for (const l of links) {
    if (await guard.remove(l.digest, cutoff, () => store.deleteBlob(l.repository, l.digest))) {
      report.layerLinks++
    } else linked.add(l.digest)
  }
  for (const b of blobs) {
    if (linked.has(b.digest)) continue
    const removal = () => rm(store.layout.blob(b.digest), { force: true })
    if (await guard.remove(b.digest, cutoff, removal)) {
      report.blobs.count++
      report.blobs.bytes += b.size
    }
  }
  return report
}

/** Step 1 for one repository: superseded generations and referrers of deleted subjects. */
async function planManifests(
  store: DiskStore,
  repo: RepositoryInventory,
  policy: StoreGcPolicy,
  cutoff: number,
  elsewhere: (repository: string, subject: Digest) => Promise<boolean>,
): Promise<CollectedManifest[]> {
  const written = new Map(repo.revisions.map((r) => [r.digest, r.mtimeMs]))
  const old = (d: Digest) => (written.get(d) ?? Infinity) < cutoff
  const out: CollectedManifest[] = []
  const collect = (d: Descriptor, subject: Digest, why: CollectedManifest['why']) => {
    if (!repo.tagged.has(d.digest) && written.has(d.digest))
      out.push({ repository: repo.name, digest: d.digest, why, subject })
  }
  for (const subject of repo.subjects) {
    const referrers = await store.listReferrers(repo.name, subject)
    if (!written.has(subject) && !(await elsewhere(repo.name, subject))) {
      for (const d of referrers) if (old(d.digest)) collect(d, subject, 'subject-deleted')
      continue
    }
    const generations = referrers
      .filter((d) => d.artifactType === MediaType.thawStreaming)
      .sort((a, b) => generationOf(b) - generationOf(a) || (a.digest < b.digest ? -1 : 1))
    const keep = Math.max(1, policy.keepGenerations)
    // Generation i left the kept window when generation i - keep arrived.
    for (let i = keep; i < generations.length; i++) {
      if (old(generations[i - keep]!.digest))
        collect(generations[i]!, subject, 'superseded-generation')
    }
  }
  return out
}

/**
 * Manifests of a repository no tag reaches, older than the cutoff and untagged themselves. Reached:
 * a tagged manifest, a child of a reached index, a referrer of a reached manifest.
 */
async function planUntagged(
  store: DiskStore,
  repo: RepositoryInventory,
  cutoff: number,
): Promise<CollectedManifest[]> {
  const reached = new Set<Digest>()
  const queue = [...repo.tagged]
  for (let digest = queue.pop(); digest !== undefined; digest = queue.pop()) {
    if (reached.has(digest)) continue
    reached.add(digest)
    const stored = await store.getManifest(repo.name, { digest })
    if (!stored) continue
    try {
      const parsed = parseManifest(stored.bytes, stored.mediaType)
      if (parsed.kind === 'index') queue.push(...parsed.manifest.manifests.map((d) => d.digest))
    } catch {
      // not ours to judge: it reaches nothing further
    }
    queue.push(...(await store.listReferrers(repo.name, digest)).map((d) => d.digest))
  }
  const out: CollectedManifest[] = []
  for (const { digest, mtimeMs } of repo.revisions) {
    if (reached.has(digest) || mtimeMs >= cutoff) continue
    const stored = await store.getManifest(repo.name, { digest })
    const subject = stored && subjectOf(stored)
    out.push({ repository: repo.name, digest, why: 'untagged', subject: subject ?? digest })
  }
  return out
}

/** A manifest's own digest and what it references (config, layers); children are revisions too. */
async function referencedBy(
  store: DiskStore,
  repository: string,
  digest: Digest,
): Promise<Digest[]> {
  const stored = await store.getManifest(repository, { digest })
  if (!stored) return [digest]
  try {
    const parsed = parseManifest(stored.bytes, stored.mediaType)
    if (parsed.kind === 'index') return [digest]
    const { config, layers } = parsed.manifest
    return [digest, config.digest, ...layers.map((l) => l.digest)]
  } catch {
    return [digest] // not ours to judge: keep it, reference nothing
  }
}

function generationOf(d: Descriptor): number {
  return Number(d.annotations?.[GENERATION_ANNOTATION] ?? 0) || 0
}
