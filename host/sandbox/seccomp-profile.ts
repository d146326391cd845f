import type { Capability } from './capabilities.ts'
import type { RuntimeSeccomp, SeccompRule } from './runtime-spec.ts'

/**
 * The seccomp filter of every node: an allow-list; anything else fails with EPERM.
 *
 * Where it comes from: the default profile container runtimes apply to every container, Docker's
 * and containerd's (moby profiles/seccomp/default.json; containerd's contrib/seccomp generates the
 * same rules) and podman's (containers-common, /usr/share/containers/seccomp.json from Debian's
 * golang-github-containers-common 0.50.1). Like theirs it allows the ordinary syscalls of any
 * program, allows the ones a capability guards only when the node holds that capability (the
 * rules are resolved here, when config.json is written, as Docker does), keeps clone from making
 * namespaces, answers clone3 with ENOSYS so glibc falls back to clone, and runs on the native
 * architecture with its 32-bit compat ones. Syscalls newer than every name here also get ENOSYS
 * from runc (its seccomp stub, libcontainer/seccomp/patchbpf), so a newer libc falls back.
 *
 * What thaw changed, for functions that never debug, mount or sandbox anything themselves:
 * - ptrace, process_vm_readv/writev, kcmp, pidfd_getfd, process_madvise need CAP_SYS_PTRACE
 *   (Docker allows ptrace to all on kernels ≥ 4.8);
 * - io_uring_setup/enter/register are denied (Docker ≥ 25 and containerd 2 deny them too; libuv
 *   falls back to its thread pool);
 * - keyctl, add_key, request_key, userfaultfd stay denied (as in both profiles);
 * - mount, umount2, unshare, setns, pivot_root, the new mount API, bpf, perf_event_open and the
 *   other CAP_SYS_ADMIN syscalls need CAP_SYS_ADMIN (podman allows them to all and leaves it to
 *   the capability checks, which a user namespace made by unshare would then pass).
 */

/** Ordinary syscalls: files, memory, processes, signals, time, sockets, System V and POSIX IPC. */
const ALLOWED = [
  // files and directories
  ...['access', 'faccessat', 'faccessat2', 'chdir', 'fchdir', 'getcwd', 'chmod', 'fchmod'],
  ...['fchmodat', 'fchmodat2', 'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown'],
  ...['lchown32', 'close', 'close_range', 'creat', 'open', 'openat', 'openat2', 'dup', 'dup2'],
  ...['dup3', 'fcntl', 'fcntl64', 'flock', 'fadvise64', 'fadvise64_64', 'fallocate', 'fsync'],
  ...['fdatasync', 'sync', 'syncfs', 'sync_file_range', 'ftruncate', 'ftruncate64', 'truncate'],
  ...['truncate64', 'getdents', 'getdents64', 'link', 'linkat', 'symlink', 'symlinkat', 'unlink'],
  ...['unlinkat', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'rmdir', 'rename', 'renameat'],
  ...['renameat2', 'readlink', 'readlinkat', 'stat', 'stat64', 'lstat', 'lstat64', 'fstat'],
  ...['fstat64', 'fstatat64', 'newfstatat', 'statx', 'statfs', 'statfs64', 'fstatfs'],
  ...['fstatfs64', 'umask', 'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat'],
  ...['getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr', 'listxattr'],
  ...['llistxattr', 'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr'],
  ...['inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark'],
  ...['name_to_handle_at', 'memfd_create', 'copy_file_range', 'sendfile', 'sendfile64'],
  ...['splice', 'tee', 'vmsplice', 'readahead', 'ioctl'],
  // reading and writing
  ...['read', 'readv', 'pread64', 'preadv', 'preadv2', 'write', 'writev', 'pwrite64', 'pwritev'],
  ...['pwritev2', 'lseek', '_llseek'],
  // waiting for descriptors
  ...['select', '_newselect', 'pselect6', 'pselect6_time64', 'poll', 'ppoll', 'ppoll_time64'],
  ...['epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait'],
  ...['epoll_wait_old', 'epoll_pwait', 'epoll_pwait2', 'eventfd', 'eventfd2', 'signalfd'],
  ...['signalfd4', 'timerfd_create', 'timerfd_settime', 'timerfd_settime64', 'timerfd_gettime'],
  ...['timerfd_gettime64', 'pipe', 'pipe2'],
  // asynchronous I/O (the old interface; io_uring is left out, see above)
  ...['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents'],
  ...['io_pgetevents_time64'],
  // memory
  ...['brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync'],
  ...['mlock', 'mlock2', 'mlockall', 'munlock', 'munlockall', 'remap_file_pages', 'membarrier'],
  ...['pkey_alloc', 'pkey_free', 'pkey_mprotect', 'memfd_secret', 'map_shadow_stack'],
  // processes and threads (clone is below, with its flags checked)
  ...['fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid'],
  ...['getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'setpgid', 'getsid', 'setsid'],
  ...['set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq', 'prctl', 'arch_prctl'],
  ...['get_thread_area', 'set_thread_area', 'modify_ldt', 'futex', 'futex_time64'],
  ...['futex_waitv', 'futex_wake', 'futex_wait', 'futex_requeue', 'sched_yield'],
  ...['sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr'],
  ...['sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler'],
  ...['sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval'],
  ...['sched_rr_get_interval_time64', 'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set'],
  ...['getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'times', 'getcpu'],
  ...['sysinfo', 'uname', 'seccomp', 'capget', 'capset', 'landlock_create_ruleset'],
  ...['landlock_add_rule', 'landlock_restrict_self', 'pidfd_open', 'pidfd_send_signal'],
  ...['process_mrelease', 'restart_syscall'],
  // users and groups (the capabilities decide what a change may do)
  ...['getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid'],
  ...['getegid32', 'getresuid', 'getresuid32', 'getresgid', 'getresgid32', 'getgroups'],
  ...['getgroups32', 'setuid', 'setuid32', 'setgid', 'setgid32', 'setreuid', 'setreuid32'],
  ...['setregid', 'setregid32', 'setresuid', 'setresuid32', 'setresgid', 'setresgid32'],
  ...['setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32', 'setgroups', 'setgroups32'],
  // signals and timers
  ...['kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'sigreturn'],
  ...['rt_sigpending', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64'],
  ...['rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'sigaltstack', 'sigprocmask', 'pause', 'alarm'],
  ...['getitimer', 'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun'],
  ...['timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64'],
  // clocks (setting one needs CAP_SYS_TIME, below; adjtimex only reads without it)
  ...['time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres'],
  ...['clock_getres_time64', 'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep'],
  ...['adjtimex', 'clock_adjtime', 'clock_adjtime64'],
  // sockets (socket itself is below: no AF_VSOCK)
  ...['socketpair', 'socketcall', 'bind', 'listen', 'accept', 'accept4', 'connect', 'shutdown'],
  ...['getsockname', 'getpeername', 'getsockopt', 'setsockopt', 'send', 'sendto', 'sendmsg'],
  ...['sendmmsg', 'recv', 'recvfrom', 'recvmsg', 'recvmmsg', 'recvmmsg_time64'],
  // System V and POSIX IPC (the node has its own IPC namespace)
  ...['ipc', 'msgget', 'msgctl', 'msgsnd', 'msgrcv', 'semget', 'semctl', 'semop', 'semtimedop'],
  ...['semtimedop_time64', 'shmget', 'shmctl', 'shmat', 'shmdt', 'mq_open', 'mq_unlink'],
  ...['mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64'],
  ...['mq_notify', 'mq_getsetattr'],
  // randomness
  'getrandom',
  // aarch64 and arm only (ignored elsewhere)
  ...['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush'],
  'set_tls',
]

/** Syscalls a capability guards: allowed only to a node that holds it. */
const BY_CAPABILITY: Partial<Record<Capability, string[]>> = {
  CAP_SYS_ADMIN: [
    ...['mount', 'umount', 'umount2', 'pivot_root', 'unshare', 'setns', 'fsopen', 'fsconfig'],
    ...['fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'quotactl'],
    ...['quotactl_fd', 'sethostname', 'setdomainname', 'lookup_dcookie', 'fanotify_init', 'bpf'],
    ...['perf_event_open', 'syslog', 'clone3'],
  ],
  CAP_SYS_PTRACE: [
    ...['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd'],
    'process_madvise',
  ],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
}

const EPERM = 1
const ENOSYS = 38
const AF_VSOCK = 40
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (sched.h). */
const CLONE_NAMESPACE_FLAGS = 0x7e020000
/** PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (only asks). */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]

/** Architectures the filter covers: the host's own and its compat ones. */
const ARCHITECTURES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
}

/** config.json `linux.seccomp` for a node whose bounding set is `caps`. */
export function nodeSeccompProfile(
  caps: readonly Capability[],
  arch: string = process.arch,
): RuntimeSeccomp {
  const allow = (names: string[], args?: SeccompRule['args']): SeccompRule => ({
    names,
    action: 'SCMP_ACT_ALLOW',
    ...(args ? { args } : {}),
  })
  const guarded = caps.flatMap((cap) => BY_CAPABILITY[cap] ?? [])
  const syscalls: SeccompRule[] = [allow([...new Set([...ALLOWED, ...guarded])].sort())]
  syscalls.push(allow(['socket'], [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }]))
  for (const value of PERSONALITIES) {
    syscalls.push(allow(['personality'], [{ index: 0, value, op: 'SCMP_CMP_EQ' }]))
  }
  if (!caps.includes('CAP_SYS_ADMIN')) {
    // Threads and processes, but no new namespaces: (flags & NAMESPACES) == 0.
    const masked = { index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }
    syscalls.push(allow(['clone'], [{ ...masked, op: 'SCMP_CMP_MASKED_EQ' }]))
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS })
  } else {
    syscalls.push(allow(['clone']))
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: ARCHITECTURES[arch] ?? [],
    syscalls,
  }
}
