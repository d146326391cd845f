import type { Contender } from '../contender.ts'
import { cachedSandboxContender } from './cached-sandbox.ts'
import { fullPullContender } from './full-pull.ts'
import { pendingContenders } from './pending.ts'
import { stargzOptimizedContender } from './stargz-optimized.ts'
import { thawContender } from './thaw.ts'
import { thawSnapshotterContender } from './thaw-snapshotter.ts'

/**
 * Are thaw's own rows switched on? Only with THAW_BENCH_THAW=1: they drive `thaw edge` and
 * `thaw host` (contenders/thaw.ts), which need the host, the lazy mounts and the edge's
 * conversion merged on this checkout. Off, they are listed as pending and nothing is made up.
 */
export function thawEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.THAW_BENCH_THAW === '1'
}

/** Every contender that runs, in the order the report lists them. */
export function allContenders(env: NodeJS.ProcessEnv = process.env): Contender[] {
  return [
    fullPullContender(),
    cachedSandboxContender('cold'),
    cachedSandboxContender('warm'),
    stargzOptimizedContender(),
    ...(thawEnabled(env)
      ? [
          thawContender('cold'),
          thawContender('profile'),
          thawContender('again'),
          thawSnapshotterContender('cold'),
          thawSnapshotterContender('profile'),
        ]
      : []),
  ]
}

export { pendingContenders }
