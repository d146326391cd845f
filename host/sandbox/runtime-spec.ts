/**
 * The part of the OCI runtime spec's config.json that thaw writes
 * (https://github.com/opencontainers/runtime-spec/blob/v1.0.2/config.md and config-linux.md).
 * Field names are the spec's; optional fields thaw never sets are left out.
 */
export interface RuntimeSpec {
  ociVersion: string
  process: RuntimeProcess
  root: { path: string; readonly?: boolean }
  hostname?: string
  mounts: RuntimeMount[]
  linux: RuntimeLinux
}

export interface RuntimeProcess {
  terminal: false
  user: { uid: number; gid: number; additionalGids?: number[] }
  args: string[]
  env: string[]
  cwd: string
  capabilities: {
    bounding: string[]
    effective: string[]
    permitted: string[]
    inheritable: string[]
    ambient: string[]
  }
  rlimits: { type: string; hard: number; soft: number }[]
  noNewPrivileges: boolean
  oomScoreAdj?: number
}

export interface RuntimeMount {
  destination: string
  type: string
  source: string
  options?: string[]
}

export type NamespaceType = 'pid' | 'network' | 'ipc' | 'uts' | 'mount' | 'cgroup' | 'user'

export interface RuntimeLinux {
  namespaces: { type: NamespaceType; path?: string }[]
  /** Relative: runc places it under the cgroup of the process that runs runc (fs/paths.go). */
  cgroupsPath: string
  resources: {
    devices: { allow: boolean; access?: string; type?: string; major?: number; minor?: number }[]
    memory?: { limit?: number; swap?: number }
    pids?: { limit: number }
  }
  maskedPaths: string[]
  readonlyPaths: string[]
  rootfsPropagation?: string
}
