/**
 * What a test file leaves behind, undone when it ends (also when a test failed), in an order that
 * works: servers and processes first (a mount process unmounts as it stops), then temporary
 * directories (any FUSE mount still under them detached first, or `rm` would fail with EBUSY).
 *
 * The hook that runs it is registered once per test file by the setup file
 * (test/support/cleanup-hooks.ts, vitest.config.ts `setupFiles`): a hook registered from inside a
 * running `beforeAll` or test is ignored by vitest, which is how processes started there leaked.
 * Benchmarks import these helpers outside vitest; nothing here imports vitest.
 */
export type CleanupPhase = 'servers' | 'dirs'

const PHASES: CleanupPhase[] = ['servers', 'dirs']
const tasks = new Map<CleanupPhase, (() => Promise<unknown>)[]>(PHASES.map((p) => [p, []]))

/** Runs `task` when the current test file ends. */
export function onCleanup(phase: CleanupPhase, task: () => Promise<unknown>): void {
  tasks.get(phase)!.push(task)
}

/** Runs every registered task, phase by phase; the first failure is thrown after all ran. */
export async function runCleanup(): Promise<void> {
  const failures: unknown[] = []
  for (const phase of PHASES) {
    const due = tasks.get(phase)!.splice(0)
    for (const r of await Promise.allSettled(due.map((t) => t()))) {
      if (r.status === 'rejected') failures.push(r.reason)
    }
  }
  if (failures.length > 0) throw failures[0]
}
