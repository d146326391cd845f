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

/** A user namespace mapping: `size` ids from `containerID` inside to `hostID` outside. */
export interface IdMapping {
  containerID: number
  hostID: number
  size: number
}

export interface RuntimeLinux {
  namespaces: { type: NamespaceType; path?: string }[]
  uidMappings?: IdMapping[]
  gidMappings?: IdMapping[]
  /** Relative: runc places it under the cgroup of the process that runs runc (fs/paths.go). */
  cgroupsPath: string
  resources: {
    devices: { allow: boolean; access?: string; type?: string; major?: number; minor?: number }[]
    memory?: { limit?: number; swap?: number }
    pids?: { limit: number }
    /** CFS bandwidth: `quota` µs of CPU time per `period` µs (cgroup v1 cpu.cfs_*, v2 cpu.max). */
    cpu?: { quota: number; period: number }
  }
  seccomp?: RuntimeSeccomp
  maskedPaths: string[]
  readonlyPaths: string[]
  rootfsPropagation?: string
}

/** config-linux.md#seccomp, with the actions and operators thaw uses. */
export interface RuntimeSeccomp {
  defaultAction: 'SCMP_ACT_ERRNO'
  defaultErrnoRet?: number
  architectures: string[]
  syscalls: SeccompRule[]
}

export interface SeccompRule {
  names: string[]
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO'
  errnoRet?: number
  /** All must hold. MASKED_EQ: `(arg & value) == valueTwo`. */
  args?: {
    index: number
    value: number
    valueTwo?: number
    op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ'
  }[]
}
