import type { RuntimeProcess } from './runtime-spec.ts'

/** Every capability of Linux 6.x, in bit order (include/uapi/linux/capability.h). */
export const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const

export type Capability = (typeof CAPABILITIES)[number]

export function isCapability(name: string): name is Capability {
  return (CAPABILITIES as readonly string[]).includes(name)
}

/** Docker's default set (moby oci/caps/defaults.go), which every runtime's default follows. */
export const DOCKER_DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]

/**
 * What a node's root process holds unless its app adds some: nothing, as Kubernetes' restricted
 * profile has it (drop ALL). Measured by running the sample apps (templates/: the Node.js
 * worker with http-javascript and http-typescript, and the Python custom handler), each as root
 * and as a plain user, with and without a user namespace: all load and answer with no
 * capability at all. Docker's set would give NET_RAW (raw and packet sockets), MKNOD, SETUID
 * and SETGID (user switching), SETPCAP and SETFCAP, SYS_CHROOT, KILL (signals to other users),
 * AUDIT_WRITE, and CHOWN, DAC_OVERRIDE, FOWNER, FSETID (files of other users); an app that needs
 * one adds it (app limits `addCapabilities`), from what the operator allows.
 */
export const NODE_CAPABILITIES: readonly Capability[] = []

/** What an operator lets apps add unless configured otherwise: Docker's set without NET_RAW, MKNOD. */
export const ADDABLE_CAPABILITIES: readonly Capability[] = DOCKER_DEFAULT_CAPABILITIES.filter(
  (c) => c !== 'CAP_NET_RAW' && c !== 'CAP_MKNOD',
)

/**
 * The process's capability sets for `caps`. Root gets them in effect; any other user only in
 * the bounding set, as a non-root process gets from execve under Docker (runc would otherwise
 * hand a non-root user the sets as they are).
 */
export function capabilitySets(
  uid: number,
  caps: readonly Capability[],
): RuntimeProcess['capabilities'] {
  const held = uid === 0 ? [...caps] : []
  return { bounding: [...caps], effective: held, permitted: held, inheritable: [], ambient: [] }
}

/** The names set in a `/proc/<pid>/status` Cap* mask (hex), in bit order. */
export function decodeCapabilityMask(hex: string): Capability[] {
  const mask = BigInt(`0x${hex}`)
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n)
}
