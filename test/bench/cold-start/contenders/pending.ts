import type { PendingContender } from '../contender.ts'

/**
 * Slots for thaw's own rows. They need the lazy mount (host/mount), the edge's conversion
 * (registry-edge/convert) and the host (host/), which are being built; the lead fills them in by
 * writing a `Contender` (contender.ts) for each and listing it in contenders/index.ts. Until then
 * the report lists them as pending: no figure is made up for them.
 */
export const PENDING_CONTENDERS: readonly PendingContender[] = [
  {
    id: 'thaw-cold',
    label: 'thaw, cold, no profile',
    description:
      'streaming artifact from the edge, lazy FUSE mount, host cache cleared and page cache dropped, no prefetch profile',
    pending: 'needs host/mount + registry-edge/convert + host (branches mount, convert, host)',
  },
  {
    id: 'thaw-profile',
    label: 'thaw, cold, with profile',
    description:
      'as thaw-cold, after one recorded start: the prefetch bundle replayed (host cache cleared, page cache dropped)',
    pending: 'needs host/mount + registry-edge/convert + host (branches mount, convert, host)',
  },
  {
    id: 'thaw-profile-28-vs-1',
    label: 'thaw with profile, 28 layers vs 1 layer',
    description: 'thaw-profile on the multi image divided by thaw-profile on the single image',
    pending: 'computed from thaw-profile on multi and single once that row exists',
  },
]
