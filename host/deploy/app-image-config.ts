import { posix } from 'node:path'
import type { CustomHandlerConfig } from '../custom-handler/config.ts'
import type { ConfigChanges } from '../../runtime/oci/mutate.ts'

/** Where the app goes in the image: Azure's images keep it there (mcr.microsoft.com/azure-functions/*). */
export const SCRIPT_ROOT = '/home/site/wwwroot'

/**
 * Where the host binds the functions worker into every node (host/sandbox/node-spec.ts
 * NODE_PATHS.worker) and the bundle's name in it (host/pool WORKER_FILE). An `@azure/functions`
 * image names it as its entrypoint; the worker is not in the image, so every image runs the
 * host's current worker.
 */
export const WORKER_ENTRYPOINT = ['node', '/.thaw/worker/worker.mjs']

/** Image labels thaw sets (image-spec annotations.md naming: reverse DNS). */
export const LABELS = { app: 'dev.thaw.app', kind: 'dev.thaw.kind' } as const

export type AppKind = 'node' | 'custom-handler'

export interface AppImageConfigInput {
  name: string
  kind: AppKind
  /** host.json's customHandler section, for custom-handler apps. */
  customHandler?: CustomHandlerConfig
  /** Relative paths of the app's files (to tell a handler file from a command on PATH). */
  files?: ReadonlySet<string>
  /** config.created and the history entry's time. */
  created: Date
}

/**
 * The config changes that turn a base image into the app's image: for `@azure/functions` apps the
 * worker as entrypoint, for custom handlers the handler from host.json (a file of the app by its
 * absolute path in the image, else a command looked up on PATH) with its arguments. Both get the
 * script root as WorkingDir and AzureWebJobsScriptRoot, FUNCTIONS_WORKER_RUNTIME, and the labels.
 * `%SETTING%` in handler arguments is left for the host to expand (it knows the settings).
 */
export function appImageConfig(input: AppImageConfigInput): ConfigChanges {
  const common = {
    labels: { [LABELS.app]: input.name, [LABELS.kind]: input.kind },
    created: input.created,
    createdBy: `thaw deploy ${input.name}`,
  }
  if (input.kind === 'node') {
    return {
      ...common,
      entrypoint: WORKER_ENTRYPOINT,
      cmd: [],
      workingDir: SCRIPT_ROOT,
      env: {
        AzureWebJobsScriptRoot: SCRIPT_ROOT,
        FUNCTIONS_WORKER_RUNTIME: 'node',
        NODE_ENV: 'production',
      },
    }
  }
  const handler = input.customHandler!
  const workDir = posix.join(SCRIPT_ROOT, handler.workingDirectory ?? '')
  const relWorkDir = posix.relative(SCRIPT_ROOT, workDir)
  const inApp = posix.join(relWorkDir, handler.executable)
  const executable = input.files?.has(inApp) ? posix.join(SCRIPT_ROOT, inApp) : handler.executable
  return {
    ...common,
    entrypoint: [executable, ...handler.arguments],
    cmd: [],
    workingDir: workDir,
    env: { AzureWebJobsScriptRoot: SCRIPT_ROOT, FUNCTIONS_WORKER_RUNTIME: 'custom' },
  }
}
