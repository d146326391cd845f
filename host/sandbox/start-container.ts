import { watch } from 'node:fs'
import { readFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { waitForExitFile, type ProcessIdentity } from './exit-file.ts'
import { processStartTime } from './instance-registry.ts'
import {
  DEFAULT_ORPHAN_TIMEOUT_SECONDS,
  type OciRuntime,
  type RunFiles,
  type RuntimeChild,
} from './oci-runtime.ts'
import { followFile } from './output-files.ts'
import { OutputTail } from './output-tail.ts'
import { holdHostFifo, makeShimFifos } from './shim-fifos.ts'

/** A container running under its shim: what the host needs to follow it, also after a restart. */
export interface RunningContainer {
  /** Host PID of the container's first process. */
  pid: number
  shim: ProcessIdentity
  output: OutputTail
  /** The runtime's exit status (null: the shim was killed before it wrote one). */
  exit: Promise<number | null>
  /**
   * Lets go of the host FIFO (shim-fifos.ts): call once the node is destroyed, or handed to no
   * one. A node let go of with no host holding it waits for one for its orphan timeout.
   */
  release(): Promise<void>
}

/**
 * Runs the container under its shim (oci-runtime.ts NODE_SHIM) and resolves with its first
 * process's host PID as soon as the runtime writes it (after the namespaces, mounts and cgroups
 * exist, just before the process is exec'd; a missing executable is found before that). Rejects
 * with `NODE_START_FAILED` and the runtime's own error if it exits first. Should this host die,
 * the node waits `orphanTimeoutSeconds` for a next one (0: forever), then ends.
 */
export async function startContainer(
  runtime: OciRuntime,
  id: string,
  bundle: string,
  files: RunFiles,
  options: { orphanTimeoutSeconds?: number; signal?: AbortSignal } = {},
): Promise<RunningContainer> {
  const { signal } = options
  signal?.throwIfAborted()
  await makeShimFifos(files)
  const hostFifo = await holdHostFifo(
    files,
    options.orphanTimeoutSeconds ?? DEFAULT_ORPHAN_TIMEOUT_SECONDS,
  )
  let child: RuntimeChild
  try {
    child = await runtime.run(id, bundle, files)
  } catch (err) {
    await hostFifo.close()
    throw err
  }
  child.on('error', () => {}) // spawn errors reject below; later ones show as the exit
  const shim = { pid: child.pid ?? 0, startTime: (await processStartTime(child.pid ?? 0)) ?? '' }
  const output = followOutput(files)
  try {
    const pid = await waitForPidFile(files.pidFile, child, signal)
    // The shim holds the runtime FIFO from before the runtime wrote the PID file: its end now
    // means the shim is gone.
    return following(files, shim, pid, output, hostFifo)
  } catch (err) {
    // The shim's process group: the shim, its watchdog and the runtime (a half-made container
    // is deleted by the node's destroy).
    if (child.exitCode === null && child.signalCode === null) killGroup(child)
    await output.stop()
    await hostFifo.close()
    if (err instanceof ThawError && err.code === 'NODE_START_FAILED') {
      throw await withRuntimeError(err, files.logFile, output.tail)
    }
    throw err
  }
}

/**
 * Follows a container a host that died left running (the shim and its files are all there is
 * to it): holds the host FIFO again, so its shim stops waiting for a host, and follows its
 * output files and exit status.
 */
export async function followContainer(
  files: RunFiles,
  shim: ProcessIdentity,
  pid: number,
  orphanTimeoutSeconds = DEFAULT_ORPHAN_TIMEOUT_SECONDS,
): Promise<RunningContainer> {
  const hostFifo = await holdHostFifo(files, orphanTimeoutSeconds)
  return following(files, shim, pid, followOutput(files), hostFifo)
}

function following(
  files: RunFiles,
  shim: ProcessIdentity,
  pid: number,
  output: FollowedOutput,
  hostFifo: FileHandle,
): RunningContainer {
  // The last output is read before the exit is told.
  const exit = waitForExitFile(files).then(async (code) => {
    await output.stop()
    return code
  })
  let released: Promise<void> | undefined
  const release = () => (released ??= hostFifo.close().catch(() => {}))
  return { pid, shim, output: output.tail, exit, release }
}

interface FollowedOutput {
  tail: OutputTail
  /** Reads what is left of both files and ends the tail's streams. */
  stop(): Promise<void>
}

function followOutput(files: Pick<RunFiles, 'stdout' | 'stderr'>): FollowedOutput {
  const stdout = followFile(files.stdout)
  const stderr = followFile(files.stderr)
  return {
    tail: new OutputTail({ stdout: stdout.stream, stderr: stderr.stream }),
    stop: async () => void (await Promise.all([stdout.stop(), stderr.stop()])),
  }
}

function killGroup(child: RuntimeChild): void {
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {
    // gone already
  }
}

function waitForPidFile(path: string, child: RuntimeChild, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false
    const name = basename(path)
    const watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file === name) void check()
    })
    const finish = (f: () => void) => {
      if (settled) return
      settled = true
      watcher.close()
      child.off('exit', onExit)
      child.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
      f()
    }
    const check = async () => {
      const text = await readFile(path, 'utf8').catch(() => '')
      if (/^\d+$/.test(text.trim())) finish(() => resolve(Number(text)))
    }
    const onExit = (code: number | null, sig: NodeJS.Signals | null) => {
      // The PID file may have been written just before a very short-lived process exited.
      void check().then(() =>
        finish(() =>
          reject(
            new ThawError(
              'NODE_START_FAILED',
              `the OCI runtime exited (${code ?? sig}) before the node started`,
            ),
          ),
        ),
      )
    }
    const onAbort = () => finish(() => reject(signal!.reason))
    const onError = (err: Error) => finish(() => reject(err))
    child.once('error', onError)
    child.once('exit', onExit)
    signal?.addEventListener('abort', onAbort, { once: true })
    void check()
  })
}

/** The runtime's last error line (its JSON log, else its stderr) into the error's message. */
async function withRuntimeError(err: ThawError, logFile: string, output: OutputTail) {
  const log = await readFile(logFile, 'utf8').catch(() => '')
  const messages = log
    .split('\n')
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string }
        return entry.level === 'error' || entry.level === 'fatal' ? entry.msg : undefined
      } catch {
        return undefined
      }
    })
    .filter((m): m is string => !!m)
  const detail = messages.at(-1) ?? output.text('stderr').trim().split('\n').at(-1) ?? ''
  // The image's fault when its command cannot be executed; thaw's or the machine's otherwise.
  const fault = /exec: |executable file not found/.test(detail) ? 'user' : 'system'
  return new ThawError('NODE_START_FAILED', `${err.message}: ${detail}`, { fault, cause: err })
}

/** A container's runtime and shim files (oci-runtime.ts RunFiles), in its directory. */
export function containerFiles(dir: string): RunFiles {
  return {
    pidFile: join(dir, 'pid'),
    logFile: join(dir, 'runtime.log'),
    stdout: join(dir, 'stdout'),
    stderr: join(dir, 'stderr'),
    exitFile: join(dir, 'exit'),
    hostFifo: join(dir, 'host.fifo'),
    runtimeFifo: join(dir, 'runtime.fifo'),
    orphanTimeoutFile: join(dir, 'orphan-timeout'),
  }
}
