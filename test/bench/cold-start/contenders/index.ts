import type { Contender } from '../contender.ts'
import { cachedSandboxContender } from './cached-sandbox.ts'
import { fullPullContender } from './full-pull.ts'

export { PENDING_CONTENDERS } from './pending.ts'

/**
 * Every contender that runs, in the order the report lists them. thaw's rows go here when they
 * exist (see pending.ts); ids `thaw-cold` and `thaw-profile` are what the report's ratios look for.
 */
export function allContenders(): Contender[] {
  return [fullPullContender(), cachedSandboxContender('cold'), cachedSandboxContender('warm')]
}
