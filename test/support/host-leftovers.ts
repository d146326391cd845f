import { join } from 'node:path'
import { cleanupLeftovers, type LeftoverReport } from '../../host/sandbox/leftovers.ts'
import { createOciRuntime } from '../../host/sandbox/oci-runtime.ts'

/**
 * Removes what a `thaw host` process that died (a crash, a SIGKILL) left of its nodes under its
 * state directory: containers, mounts, network namespaces, veths, firewall table, leases. What
 * the next host on that state would do at its start, for tests whose host did not stop cleanly.
 * Live hosts are never touched (sandbox/leftovers.ts matches dead instances only).
 */
export function cleanupHostLeftovers(hostStateDir: string): Promise<LeftoverReport> {
  const stateDir = join(hostStateDir, 'sandbox')
  return cleanupLeftovers({
    registryDir: '/run/thaw',
    leaseDir: '/run/thaw/subnets',
    stateDir,
    runtime: createOciRuntime('runc', { root: join(stateDir, 'runc') }),
  })
}
