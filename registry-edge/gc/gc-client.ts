import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { formatBytes } from '../../runtime/text/format-bytes.ts'
import { isDigest, type Digest } from '../../runtime/oci/index.ts'
import type { GcReport } from './edge-gc.ts'

const freed = z.object({ count: z.number(), bytes: z.number() })
const reportSchema = z.object({
  dryRun: z.boolean(),
  manifests: z.array(
    z.object({
      repository: z.string(),
      digest: z
        .string()
        .refine(isDigest)
        .transform((d) => d as Digest),
      subject: z
        .string()
        .refine(isDigest)
        .transform((d) => d as Digest),
      why: z.enum(['superseded-generation', 'subject-deleted', 'untagged']),
    }),
  ),
  layerLinks: z.number(),
  blobs: freed,
  profileRuns: freed,
  bundles: freed,
  freedBytes: z.number(),
})

/** `POST <edge>/_thaw/gc`: one collection on the running edge (thaw edge gc). */
export async function requestGc(edge: string, options: { dryRun: boolean }): Promise<GcReport> {
  const url = new URL('/_thaw/gc', edge)
  if (options.dryRun) url.searchParams.set('dry-run', '1')
  let res: Response
  try {
    res = await fetch(url, { method: 'POST' })
  } catch (err) {
    throw new ThawError(
      'EDGE_UNREACHABLE',
      `no edge answers at ${edge} (${(err as Error).message}); is it running? (--edge URL)`,
      { fault: 'user' },
    )
  }
  const text = await res.text()
  if (!res.ok)
    throw new ThawError('GC_REFUSED', `${url.pathname}: ${res.status} ${text.slice(0, 300)}`, {
      fault: 'user',
    })
  return reportSchema.parse(JSON.parse(text))
}

/** The report as `thaw edge gc` prints it. */
export function formatGcReport(r: GcReport): string {
  const verb = r.dryRun ? 'would free' : 'freed'
  const count = (why: string) => r.manifests.filter((m) => m.why === why).length
  const rows: [string, string][] = [
    ['superseded artifact generations', `${count('superseded-generation')} manifests`],
    ['referrers of deleted images', `${count('subject-deleted')} manifests`],
    ['untagged manifests', `${count('untagged')} manifests`],
    ['layer links no manifest uses', `${r.layerLinks}`],
    ['unreferenced blobs', `${r.blobs.count} (${formatBytes(r.blobs.bytes)})`],
    [
      'profile runs compacted',
      `${r.profileRuns.count} (${formatBytes(Math.max(0, r.profileRuns.bytes))})`,
    ],
    ['prefetch bundles', `${r.bundles.count} (${formatBytes(r.bundles.bytes)})`],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)
  const head = `${r.dryRun ? 'dry run: ' : ''}${verb} ${formatBytes(Math.max(0, r.freedBytes))}`
  return `${[head, ...lines].join('\n')}\n`
}
