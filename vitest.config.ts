import { defineConfig } from 'vitest/config'

// Two projects: fast unit tests, and e2e tests with real processes (registry, FUSE, runc).
// e2e files run one at a time: they mount filesystems and start sandboxes on a 2-core machine.
// Stops what each test file started, then removes its temp dirs (test/support/cleanup.ts).
const CLEANUP = 'test/support/cleanup-hooks.ts'

export default defineConfig({
  test: {
    passWithNoTests: true,
    projects: [
      {
        test: {
          name: 'unit',
          setupFiles: [CLEANUP],
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'test/bench/**', '**/node_modules/**'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          setupFiles: [CLEANUP],
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
