import { afterAll } from 'vitest'
import { runCleanup } from './cleanup.ts'

// A setup file (vitest.config.ts): runs before each test file, so this hook belongs to every file
// and, registered first, runs after the file's own afterAll hooks.
afterAll(runCleanup)
