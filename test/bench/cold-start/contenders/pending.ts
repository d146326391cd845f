import type { PendingContender } from '../contender.ts'

const NEEDS =
  'thaw host + lazy mounts + edge conversion; written in contenders/thaw.ts, switched on with THAW_BENCH_THAW=1 once they are merged'

/**
 * thaw's rows while they are off (see contenders/index.ts thawEnabled): listed in the results as
 * pending, with no figure. With THAW_BENCH_THAW=1 `thaw-cold` and `thaw-profile` run; the 28 vs
 * 1 layer figure is then computed from `thaw-profile` on the multi and single images (and stays
 * pending when either is missing, e.g. in --quick mode).
 */
export function pendingContenders(
  thawOn: boolean,
  imageNames: readonly string[],
): PendingContender[] {
  const out: PendingContender[] = []
  if (!thawOn) {
    out.push(
      {
        id: 'thaw-cold',
        label: 'thaw, cold, no profile',
        description:
          'streaming artifact from the edge, lazy FUSE mount, app drained, host cache cleared and page cache dropped, no prefetch profile',
        pending: NEEDS,
      },
      {
        id: 'thaw-profile',
        label: 'thaw, cold, with profile',
        description:
          'as thaw-cold, after one recorded start: the prefetch bundle replayed (host cache cleared, page cache dropped)',
        pending: NEEDS,
      },
      {
        id: 'thaw-again',
        label: 'thaw, cold again on the same host',
        description:
          'as thaw-profile, but the host cache is kept between runs (index, frames, whole-file copies): app drained, page cache dropped',
        pending: NEEDS,
      },
    )
  }
  if (!thawOn || !imageNames.includes('multi') || !imageNames.includes('single')) {
    out.push({
      id: 'thaw-profile-28-vs-1',
      label: 'thaw with profile, 28 layers vs 1 layer',
      description: 'thaw-profile on the multi image divided by thaw-profile on the single image',
      pending: thawOn
        ? 'needs both the multi and the single image in the run (not in --quick)'
        : 'computed from thaw-profile on multi and single once that row runs',
    })
  }
  return out
}
