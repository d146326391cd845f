import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:fs'
import { access, open, readdir } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
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
   * Starts the container under a shim that does not depend on this process (see NODE_SHIM), so
   * the node outlives a host that dies. Resolves once the shim is spawned; the container's PID
   * appears in `pidFile`, its status in `exitFile` when it ends.
   */
  run(id: string, bundle: string, files: RunFiles): Promise<RuntimeChild>
  /** `delete --force`: kills what is left and removes state and cgroups. Fine if there is none. */
  delete(id: string, signal?: AbortSignal): Promise<void>
  /** Ids of the containers in this runtime's root (any state, also stale after a reboot). */
  containerIds(): Promise<string[]>
}

export type RuntimeChild = ChildProcess

/** Where a container's runtime writes: runc's files, and the shim's output and exit status. */
export interface RunFiles {
  pidFile: string
  /** The runtime's own errors (JSON lines). */
  logFile: string
  /** The container's stdout and stderr, appended (output-files.ts follows them). */
  stdout: string
  stderr: string
  /** The container's exit status, written (by rename) when the runtime exits. */
  exitFile: string
}

/**
 * The shim: `sh` runs the runtime in the foreground (the runtime stays the parent of the
 * container's first process and exits with its status, 128+n when signal n killed it), then
 * writes that status to the exit file by rename. Spawned in its own session with its stdio on
 * the node's output files, it neither dies with the host nor depends on a pipe to it; the next
 * host reads the same files (conmon and containerd's shim do this for their engines).
 */
export const NODE_SHIM =
  'exit_file=$1; shift; "$@"; s=$?; echo $s > "$exit_file.tmp"; mv -f "$exit_file.tmp" "$exit_file"; exit $s'

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
    async run(id, bundle, files) {
      await executable(path) // the shim would only say "not found" in its stderr
      const args = ['--root', root, '--log', files.logFile, '--log-format', 'json', 'run']
      if (keepsExited) args.push('--keep')
      args.push('--bundle', bundle, '--pid-file', files.pidFile, id)
      const [stdout, stderr] = await Promise.all([
        open(files.stdout, 'a', 0o600),
        open(files.stderr, 'a', 0o600),
      ])
      try {
        // Its own session: a Ctrl-C aimed at the host must not reach nodes through runc's signal
        // forwarding (the host stops nodes itself), and the shim outlives the host.
        const child = spawn(
          '/bin/sh',
          ['-c', NODE_SHIM, 'thaw-node-shim', files.exitFile, path, ...args],
          {
            stdio: ['ignore', stdout.fd, stderr.fd],
            detached: true,
          },
        )
        child.unref()
        return child
      } finally {
        await Promise.all([stdout.close(), stderr.close()])
      }
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

/** Throws ENOENT unless `command` (a path, or a name looked up on PATH) is an executable file. */
async function executable(command: string): Promise<void> {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, command))
  for (const file of candidates) {
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return
  }
  throw Object.assign(new Error(`${command}: not found`), { code: 'ENOENT' })
}
