import { watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import type { OciRuntime, RuntimeChild } from './oci-runtime.ts'
import { OutputTail } from './output-tail.ts'

export interface StartedContainer {
  child: RuntimeChild
  pid: number
  output: OutputTail
}

/**
 * Runs the container in the foreground and resolves with its first process's host PID as soon
 * as the runtime writes it (after the namespaces, mounts and cgroups exist, just before the
 * process is exec'd; a missing executable is found before that). Rejects with
 * `NODE_START_FAILED` and the runtime's own error if it exits first.
 */
export async function startContainer(
  runtime: OciRuntime,
  id: string,
  bundle: string,
  files: { pidFile: string; logFile: string },
  signal?: AbortSignal,
): Promise<StartedContainer> {
  signal?.throwIfAborted()
  const child = runtime.run(id, bundle, files)
  child.on('error', () => {}) // spawn errors reject below; later ones show as the exit
  const output = new OutputTail({ stdout: child.stdout, stderr: child.stderr })
  try {
    const pid = await waitForPidFile(files.pidFile, child, signal)
    return { child, pid, output }
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    if (err instanceof ThawError && err.code === 'NODE_START_FAILED') {
      throw await withRuntimeError(err, files.logFile, output)
    }
    throw err
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
