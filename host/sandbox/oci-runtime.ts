import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { runCommand } from '../os/run-command.ts'

export type OciRuntimeName = 'runc' | 'crun'

/**
 * An OCI runtime binary (runc or crun: the same CLI for what thaw uses), with its own state
 * root so thaw's containers never mix with anyone else's.
 */
export interface OciRuntime {
  readonly name: OciRuntimeName
  /** The binary. */
  readonly path: string
  /** Its state directory (`--root`): one sub-directory per container, named by its id. */
  readonly root: string
  /**
   * Whether `run --keep` exists (runc): the exited container, with its cgroup, stays until
   * `delete`, so the OOM-kill count can be read after the exit. crun deletes it at once.
   */
  readonly keepsExited: boolean
  /**
   * `run` in the foreground: the runtime stays the parent of the container's first process and
   * exits with its status (128+n when it died of signal n), which a detached container would
   * lose. The container's stdout and stderr are the child's (runc passes its stdio through when
   * there is no terminal). The runtime's own errors also go to `logFile`.
   */
  run(id: string, bundle: string, files: { pidFile: string; logFile: string }): RuntimeChild
  /** `delete --force`: kills what is left and removes state and cgroups. Fine if there is none. */
  delete(id: string, signal?: AbortSignal): Promise<void>
  /** Ids of the containers in this runtime's root (any state, also stale after a reboot). */
  containerIds(): Promise<string[]>
}

export type RuntimeChild = ChildProcessByStdio<null, Readable, Readable>

export function createOciRuntime(
  name: OciRuntimeName,
  options: { root: string; path?: string },
): OciRuntime {
  const path = options.path ?? name
  const root = options.root
  const keepsExited = name === 'runc'
  return {
    name,
    path,
    root,
    keepsExited,
    run(id, bundle, files) {
      const args = ['--root', root, '--log', files.logFile, '--log-format', 'json', 'run']
      if (keepsExited) args.push('--keep')
      args.push('--bundle', bundle, '--pid-file', files.pidFile, id)
      // Its own process group: a Ctrl-C aimed at the host must not reach nodes through runc's
      // signal forwarding; the host stops nodes itself.
      return spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    },
    async delete(id, signal) {
      try {
        await runCommand(path, ['--root', root, 'delete', '--force', id], {
          signal,
          timeoutMs: 30_000,
        })
      } catch (err) {
        if (err instanceof Error && /does not exist|not exist|no such file/i.test(err.message))
          return
        throw err
      }
    },
    async containerIds() {
      const entries = await readdir(root, { withFileTypes: true }).catch(() => [])
      return entries.filter((e) => e.isDirectory()).map((e) => e.name)
    },
  }
}
