import { describe, expect, it } from 'vitest'
import type { Capability } from '../../../host/sandbox/capabilities.ts'
import type { RuntimeSeccomp } from '../../../host/sandbox/runtime-spec.ts'
import { nodeSeccompProfile } from '../../../host/sandbox/seccomp-profile.ts'

/** Rules that name `syscall`, without their names. */
function rulesFor(profile: RuntimeSeccomp, syscall: string) {
  return profile.syscalls
    .filter((r) => r.names.includes(syscall))
    .map(({ names: _, ...rule }) => rule)
}

const unconditionally = (p: RuntimeSeccomp, s: string) =>
  rulesFor(p, s).some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args)

describe('the node seccomp profile', () => {
  const none = nodeSeccompProfile([], 'x64')

  it('denies with EPERM whatever it does not list, on x86_64 and its compat architectures', () => {
    expect(none).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 })
    expect(none.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'])
    expect(nodeSeccompProfile([], 'arm64').architectures).toEqual([
      'SCMP_ARCH_AARCH64',
      'SCMP_ARCH_ARM',
    ])
  })

  it.each([
    'read',
    'openat',
    'execve',
    'fork',
    'wait4',
    'mmap',
    'futex',
    'epoll_pwait',
    'accept4',
    'connect',
    'getrandom',
    'statx',
    'rt_sigaction',
    'prctl',
    'memfd_create',
    'setuid',
  ])('allows %s', (syscall) => {
    expect(unconditionally(none, syscall)).toBe(true)
  })

  it.each<[string, Capability | undefined]>([
    ['unshare', 'CAP_SYS_ADMIN'], // a user namespace made by unshare would pass every capability check in it
    ['mount', 'CAP_SYS_ADMIN'],
    ['setns', 'CAP_SYS_ADMIN'],
    ['pivot_root', 'CAP_SYS_ADMIN'],
    ['open_tree', 'CAP_SYS_ADMIN'], // the new mount API
    ['bpf', 'CAP_SYS_ADMIN'],
    ['ptrace', 'CAP_SYS_PTRACE'], // Docker allows it to all on kernels >= 4.8; thaw does not
    ['process_vm_readv', 'CAP_SYS_PTRACE'],
    ['chroot', 'CAP_SYS_CHROOT'],
    ['reboot', 'CAP_SYS_BOOT'],
    ['init_module', 'CAP_SYS_MODULE'],
    ['clock_settime', 'CAP_SYS_TIME'],
    ['keyctl', undefined], // keyrings are not namespaced
    ['add_key', undefined],
    ['request_key', undefined],
    ['io_uring_setup', undefined], // kernel attack surface; libuv falls back to threads
    ['userfaultfd', undefined],
    ['kexec_load', undefined],
  ])('denies %s to a node without %s', (syscall, cap) => {
    expect(rulesFor(none, syscall)).toEqual([])
    if (cap) expect(unconditionally(nodeSeccompProfile([cap], 'x64'), syscall)).toBe(true)
    else expect(unconditionally(nodeSeccompProfile(['CAP_SYS_ADMIN'], 'x64'), syscall)).toBe(false)
  })

  it('lets clone make threads and processes but no namespaces, and sends clone3 to clone', () => {
    expect(rulesFor(none, 'clone')).toEqual([
      {
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
    ])
    expect(rulesFor(none, 'clone3')).toEqual([{ action: 'SCMP_ACT_ERRNO', errnoRet: 38 }])
    const admin = nodeSeccompProfile(['CAP_SYS_ADMIN'], 'x64')
    expect(unconditionally(admin, 'clone')).toBe(true)
    expect(unconditionally(admin, 'clone3')).toBe(true)
  })

  it('allows every socket family but AF_VSOCK, and only the harmless personalities', () => {
    expect(rulesFor(none, 'socket')).toEqual([
      { action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] },
    ])
    const values = rulesFor(none, 'personality').map((r) => r.args?.[0]?.value)
    expect(values).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff])
  })

  it('names each syscall once per rule and never allows one it also lists as denied', () => {
    for (const rule of none.syscalls) expect(new Set(rule.names).size).toBe(rule.names.length)
    const allowed = new Set(none.syscalls[0]!.names)
    for (const name of ['clone', 'clone3', 'socket', 'personality'])
      expect(allowed.has(name)).toBe(false)
  })
})
