import { posix } from 'node:path'
import type { ImageConfig } from '../../runtime/oci/schemas.ts'
import { ThawError } from '../../runtime/errors.ts'

/** The fields of an OCI image config's `config` that decide how a node's process starts. */
export type ImageProcessConfig = Pick<
  NonNullable<ImageConfig['config']>,
  'User' | 'Env' | 'Entrypoint' | 'Cmd' | 'WorkingDir'
>

/** PATH when neither the image nor the app sets one (Docker's and runc's default). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * The process environment, lowest precedence first: a default PATH and HOME, the image's Env,
 * then the app's settings. A later value replaces an earlier one with the same name; the order
 * of first appearance is kept, so the result is stable.
 */
export function mergeEnv(
  imageEnv: readonly string[] | null | undefined,
  appEnv: Readonly<Record<string, string>> = {},
  defaults: { home: string; hostname?: string },
): string[] {
  const merged = new Map<string, string>([
    ['PATH', DEFAULT_PATH],
    ['HOME', defaults.home],
  ])
  if (defaults.hostname) merged.set('HOSTNAME', defaults.hostname)
  for (const entry of imageEnv ?? []) {
    const eq = entry.indexOf('=')
    // image-spec config.md: entries are VARNAME=VARVALUE; one without '=' carries no value.
    if (eq <= 0) continue
    merged.set(entry.slice(0, eq), entry.slice(eq + 1))
  }
  for (const [name, value] of Object.entries(appEnv)) {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new ThawError(
        'APP_SETTING_INVALID',
        `invalid app setting name ${JSON.stringify(name)}`,
        {
          fault: 'user',
        },
      )
    }
    merged.set(name, value)
  }
  return [...merged].map(([k, v]) => `${k}=${v}`)
}

/**
 * argv: `args` when given (the host starting its worker), else Entrypoint followed by Cmd
 * (image-spec config.md; Docker's rule for images without a command override).
 */
export function processArgs(config: ImageProcessConfig, args?: readonly string[]): string[] {
  const argv = args ? [...args] : [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
  if (argv.length === 0 || argv[0] === '') {
    throw new ThawError(
      'IMAGE_NO_COMMAND',
      'the image has no Entrypoint or Cmd and no command was given',
      {
        fault: 'user',
      },
    )
  }
  return argv
}

/** The working directory: the image's WorkingDir (relative ones are taken from /), else /. */
export function workingDir(config: ImageProcessConfig): string {
  return posix.resolve('/', config.WorkingDir || '/')
}
