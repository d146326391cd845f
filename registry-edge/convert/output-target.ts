import type { RegistryBackend } from '../backend/registry-backend.ts'

/**
 * Where the edge's own outputs (streaming artifacts, published profiles) are written. Usually the
 * backend itself; a proxy edge whose upstream refuses its pushes writes them to a store of its
 * own instead (proxy/kept-artifacts.ts). `write` runs one whole output (blobs, then manifest)
 * against the backend chosen, and may run it again against another after a refusal.
 */
export interface OutputTarget {
  write<T>(repository: string, write: (backend: RegistryBackend) => Promise<T>): Promise<T>
}

/** Outputs go to `backend`. */
export function outputsTo(backend: RegistryBackend): OutputTarget {
  return { write: (_repository, write) => write(backend) }
}
