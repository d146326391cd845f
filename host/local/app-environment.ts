import { WorkerEnv } from '../../runtime/protocol/worker-contract.ts'
import type { LocalSettings } from './app-config.ts'

/**
 * The environment a local app runs with, by func start's rules (CT StartHostAction
 * .UpdateEnvironmentVariables): local.settings.json Values become variables unless the real
 * environment already has them (func prints a skip message); ConnectionStrings become
 * `ConnectionStrings:<name>`; AZURE_FUNCTIONS_ENVIRONMENT is forced to Development;
 * WEBSITE_HOSTNAME is localhost:<port>. Settings given to createRunner() are explicit and win over
 * everything.
 */
export function buildAppEnvironment(input: {
  base: NodeJS.ProcessEnv
  localSettings: LocalSettings | undefined
  settings: Record<string, string> | undefined
  scriptRoot: string
  port: number
}): { env: Record<string, string>; messages: string[] } {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(input.base)) if (v !== undefined) env[k] = v
  // The contract's own names never leak from the runner's environment into an app.
  for (const name of Object.values(WorkerEnv)) delete env[name]
  const messages: string[] = []
  for (const [k, v] of Object.entries(input.localSettings?.values ?? {})) {
    if (k in env) {
      messages.push(
        `Skipping '${k}' from local settings as it's already defined in current environment variables.`,
      )
    } else env[k] = v
  }
  for (const [k, v] of Object.entries(input.localSettings?.connectionStrings ?? {})) {
    env[`ConnectionStrings:${k}`] ??= v
  }
  const current = env.AZURE_FUNCTIONS_ENVIRONMENT
  if (current !== undefined && current !== 'Development') {
    messages.push(
      `AZURE_FUNCTIONS_ENVIRONMENT already exists with value '${current}', overriding to 'Development'.`,
    )
  }
  env.AZURE_FUNCTIONS_ENVIRONMENT = 'Development'
  env.WEBSITE_HOSTNAME = `localhost:${input.port}`
  Object.assign(env, input.settings ?? {})
  env[WorkerEnv.scriptRoot] = input.scriptRoot
  return { env, messages }
}
