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
   * appears in `pidFile`, its status in `exitFile` when it ends. The FIFOs must exist and the
   * host FIFO be held open by the caller (shim-fifos.ts).
   */
  run(id: string, bundle: string, files: RunFiles): Promise<RuntimeChild>
  /** `delete --force`: kills what is left and removes state and cgroups. Fine if there is none. */
  delete(id: string, signal?: AbortSignal): Promise<void>
  /** Ids of the containers in this runtime's root (any state, also stale after a reboot). */
  containerIds(): Promise<string[]>
}

export type RuntimeChild = ChildProcess

/** Where a container's runtime writes: runc's files, and the shim's output, exit status and FIFOs. */
export interface RunFiles {
  pidFile: string
  /** The runtime's own errors (JSON lines). */
  logFile: string
  /** The container's stdout and stderr, appended (output-files.ts follows them). */
  stdout: string
  stderr: string
  /** The container's exit status, written (by rename) when the runtime exits. */
  exitFile: string
  /**
   * A FIFO the host that follows the node holds open for writing (shim-fifos.ts): the shim sees
   * its end when that host dies, and ends the node if no host opens it again in time.
   */
  hostFifo: string
  /** A FIFO the shim and the runtime hold open: the host sees its end when both are gone. */
  runtimeFifo: string
  /** Seconds a node waits for a next host once its host died (0: forever); read at that moment. */
  orphanTimeoutFile: string
}

/** How long a node waits for a next host after its host died, unless told otherwise: 5 minutes. */
export const DEFAULT_ORPHAN_TIMEOUT_SECONDS = 300

/**
 * The shim: `sh` runs the runtime in the foreground (the runtime stays the parent of the
 * container's first process and exits with its status, 128+n when signal n killed it), then
 * writes that status to the exit file by rename. Spawned in its own session with its stdio on
 * the node's output files, it neither dies with the host nor depends on a pipe to it; the next
 * host reads the same files (conmon and containerd's shim do this for their engines).
 *
 * Two FIFOs replace polling in both directions (the host creates them and holds the host FIFO
 * open before it spawns the shim, so the shim's open of it never waits):
 * - fd 4, the runtime FIFO, is held by the shim and the runtime (not by the container: runc
 *   marks every other descriptor close-on-exec before it starts the container's process). The
 *   host reads it and gets end-of-file once both are gone, the exit file written first.
 * - fd 3 reads the host FIFO, which the following host holds open. A read there returns
 *   end-of-file once no host holds it (the kernel closed a dead host's descriptor). A watchdog
 *   then waits, in open(2), for a next host to open it; if none does within the orphan timeout
 *   (read from its file then: the last host's setting), it kills the container. No process
 *   wakes while a host is there, nor while one is awaited. The shim ends the watchdog when the
 *   runtime exits (the trap ends the timed wait with it: no process is left behind).
 * When the runtime has exited and no host holds the FIFO (the node ended with no host to clean
 * up after it), the shim deletes the container (its cgroups) and lazily unmounts what is
 * mounted under the bundle (the node's overlay and tmpfs, which also hold its image mount
 * busy); the next host on the state directory removes the rest (node-record.ts). A host that
 * is there destroys the node itself.
 */
export const NODE_SHIM = `exit_file=$1 pid_file=$2 host_fifo=$3 runtime_fifo=$4 timeout_file=$5
runtime=$6 root=$7 id=$8 bundle=$9
shift 9
exec 3<"$host_fifo" 4<>"$runtime_fifo"
(
  while :; do
    while read -r _ <&3; do :; done
    t=$(cat "$timeout_file" 2>/dev/null)
    case $t in ''|*[!0-9]*) t=${DEFAULT_ORPHAN_TIMEOUT_SECONDS} ;; esac
    if [ "$t" -eq 0 ]; then : <"$host_fifo"; continue; fi
    trap 'kill "$waiter" 2>/dev/null; exit' TERM
    timeout "$t" sh -c ': <"$1"' sh "$host_fifo" &
    waiter=$!
    wait "$waiter" && { trap - TERM; continue; }
    echo "thaw-node-shim: no host came back within $t s: ending the node" >&2
    kill -KILL "$(cat "$pid_file")"
    exit
  done
) 4>&- &
watchdog=$!
"$@" 3<&-
s=$?
kill "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null
echo $s > "$exit_file.tmp"
mv -f "$exit_file.tmp" "$exit_file"
exec 4>&-
if dd iflag=nonblock status=none <&3 >/dev/null 2>&1; then
  "$runtime" --root "$root" delete --force "$id" >/dev/null 2>&1
  findmnt -rno TARGET | awk -v p="$bundle/" 'index($0, p) == 1' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
fi
exit $s`

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
        const shimArgs = [
          ...[files.exitFile, files.pidFile, files.hostFifo, files.runtimeFifo],
          ...[files.orphanTimeoutFile, path, root, id, bundle],
        ]
        const child = spawn(
          '/bin/sh',
          ['-c', NODE_SHIM, 'thaw-node-shim', ...shimArgs, path, ...args],
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
