import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCommand, type CommandResult } from '../../../host/os/run-command.ts'
import { startChild, type BenchChild } from './child.ts'
import type { BenchLink } from './link.ts'

/**
 * A private containerd 1.6 (Debian's package) with its own root, state and socket, CRI off, run
 * on the client side of a link (inside the link's network namespace) so its pulls cross it.
 * ../shared/peers/containerd.toml is the model. `ctr` talks to it over its unix socket, on the
 * client side of the link too: containerd 1.6's `ctr image pull` fetches in the client process,
 * not in the daemon.
 */
export interface BenchContainerd {
  readonly socket: string
  ctr(args: string[], options?: CtrOptions): Promise<CommandResult>
  /** stargz-snapshotter's `ctr-remote` (rpull, optimize), the same way. */
  ctrRemote(args: string[], options?: CtrOptions): Promise<CommandResult>
  /** A long-running `ctr` (e.g. `ctr run`) or `ctr-remote`, stopped by its PID. */
  spawnCtr(args: string[], binary?: 'ctr' | 'ctr-remote'): BenchChild
  /** The daemon's log so far (the last MB). */
  output(): string
  close(): Promise<void>
}

export interface CtrOptions {
  signal?: AbortSignal
  timeoutMs?: number
  /** Another containerd namespace than the benchmark's (the CRI plugin's is `k8s.io`). */
  namespace?: string
}

export interface ContainerdOptions {
  /** Snapshotters served by other processes: name → their gRPC socket (`[proxy_plugins]`). */
  proxySnapshotters?: Record<string, string>
  /**
   * Turn the CRI plugin on (off by default), pulling with this snapshotter and passing it the
   * remote-snapshot labels (`disable_snapshot_annotations = false`); `plainHttp` registries
   * (`host:port`) are reached over http; `sandboxImage` is the pods' pause image (containerd's
   * default is registry.k8s.io/pause). Its socket is the daemon's (`runtime.v1` services).
   */
  cri?: { snapshotter: string; plainHttp: string[]; sandboxImage?: string }
}

export const CTR_NAMESPACE = 'thawbench'

export async function startContainerd(
  dir: string,
  link: Pick<BenchLink, 'wrap'>,
  options: ContainerdOptions = {},
): Promise<BenchContainerd> {
  const root = join(dir, 'root')
  const state = join(dir, 'state')
  const socket = join(state, 'containerd.sock')
  await mkdir(root, { recursive: true })
  await mkdir(state, { recursive: true })
  const config = join(dir, 'config.toml')
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${state}"`,
      ...(options.cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      ...Object.entries(options.proxySnapshotters ?? {}).flatMap(([name, address]) => [
        `[proxy_plugins.${name}]`,
        '  type = "snapshot"',
        `  address = "${address}"`,
      ]),
      ...(options.cri ? criConfig(dir, options.cri) : []),
      '',
    ].join('\n'),
  )
  const [command, args] = link.wrap('containerd', ['--config', config])
  const daemon = startChild(command, args)
  const client = (binary: string, args: string[], namespace = CTR_NAMESPACE) =>
    link.wrap(binary, ['--address', socket, '-n', namespace, ...args])
  const run =
    (binary: string) =>
    (args: string[], o: CtrOptions = {}) =>
      runCommand(...client(binary, args, o.namespace), {
        timeoutMs: o.timeoutMs ?? 600_000,
        signal: o.signal,
      })
  const ctr = run('ctr')
  for (let i = 0; ; i++) {
    if (daemon.child.exitCode !== null)
      throw new Error(`containerd exited: ${daemon.output().slice(-2000)}`)
    const up = await runCommand('ctr', ['--address', socket, 'version'], { timeoutMs: 5000 }).then(
      () => true,
      () => false,
    )
    if (up) break
    if (i > 100) {
      await daemon.stop()
      throw new Error(`containerd did not come up: ${daemon.output().slice(-2000)}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  let closing: Promise<void> | undefined
  return {
    socket,
    ctr,
    ctrRemote: run('ctr-remote'),
    spawnCtr: (args, binary = 'ctr') => startChild(...client(binary, args)),
    output: () => daemon.output(),
    close() {
      closing ??= (async () => {
        await removeEverything(ctr)
        // The CRI plugin's pods and images (a test that failed may leave a pod running).
        if (options.cri) await removeEverything((a, o) => ctr(a, { ...o, namespace: 'k8s.io' }))
        await daemon.stop()
        // Snapshots are overlay mounts only while containers run; after the daemon stops the
        // whole root can go (a full pull wrote about 1 GB into it).
        await runCommand('umount', ['-R', state]).catch(() => {})
        await rm(dir, { recursive: true, force: true })
      })()
      return closing
    },
  }
}

function criConfig(dir: string, cri: NonNullable<ContainerdOptions['cri']>): string[] {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    ...(cri.sandboxImage ? [`  sandbox_image = "${cri.sandboxImage}"`] : []),
    // A pod sandbox asks for oom_score_adj -998, below what a process here may set without
    // CAP_SYS_RESOURCE (runc fails with "can't get final child's PID"): at most containerd's own.
    '  restrict_oom_score_adj = true',
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    `  snapshotter = "${cri.snapshotter}"`,
    '  disable_snapshot_annotations = false',
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    `  bin_dir = "${join(dir, 'cni-bin')}"`,
    `  conf_dir = "${join(dir, 'cni-conf')}"`,
    ...cri.plainHttp.flatMap((host) => [
      `[plugins."io.containerd.grpc.v1.cri".registry.mirrors."${host}"]`,
      `  endpoint = ["http://${host}"]`,
    ]),
  ]
}

/** Every task, container and image of the benchmark's namespace, then content GC. */
export async function removeEverything(ctr: BenchContainerd['ctr']): Promise<void> {
  const list = async (args: string[]) =>
    (await ctr([...args, '-q']).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean)
  for (const id of await list(['task', 'ls'])) {
    await ctr(['task', 'kill', '-s', 'SIGKILL', id]).catch(() => {})
    await ctr(['task', 'delete', '-f', id]).catch(() => {})
  }
  for (const id of await list(['container', 'ls']))
    await ctr(['container', 'rm', id]).catch(() => {})
  for (const ref of await list(['image', 'ls']))
    await ctr(['image', 'rm', '--sync', ref]).catch(() => {})
}
