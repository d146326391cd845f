import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ThawError } from '../../errors.ts'
import type { Credentials } from './auth.ts'

const configSchema = z.object({
  auths: z
    .record(
      z.string(),
      z.object({
        auth: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
      }),
    )
    .optional(),
})

/**
 * Registry credentials from a docker config.json (`docker login`'s file, and what a Kubernetes
 * image-pull secret of type kubernetes.io/dockerconfigjson holds): `auths` by registry, each
 * `auth` (base64 of `user:password`) or `username` and `password`. Keys may be a host
 * (`registry.example:5000`) or a URL (`https://index.docker.io/v1/`). Credential helpers
 * (`credsStore`, `credHelpers`) are not run.
 */
export function parseDockerConfig(value: unknown): (host: string) => Credentials | undefined {
  const parsed = configSchema.safeParse(value)
  if (!parsed.success) throw invalid(`not a docker config.json: ${parsed.error.issues[0]?.message}`)
  const byHost = new Map<string, Credentials>()
  for (const [key, entry] of Object.entries(parsed.data.auths ?? {})) {
    let credentials: Credentials | undefined
    if (entry.auth) {
      const text = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = text.indexOf(':')
      if (colon > 0)
        credentials = { username: text.slice(0, colon), password: text.slice(colon + 1) }
    } else if (entry.username && entry.password !== undefined)
      credentials = { username: entry.username, password: entry.password }
    if (credentials) byHost.set(hostOf(key), credentials)
  }
  return (host) =>
    byHost.get(host) ?? (isDockerHub(host) ? byHost.get('index.docker.io') : undefined)
}

export async function readDockerConfig(
  file: string,
): Promise<(host: string) => Credentials | undefined> {
  let value: unknown
  try {
    value = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw invalid(`${file}: ${(err as Error).message}`)
  }
  return parseDockerConfig(value)
}

function hostOf(key: string): string {
  const host = /^[a-z]+:\/\//i.test(key) ? new URL(key).host : key.split('/')[0]!
  return isDockerHub(host) ? 'index.docker.io' : host
}

function isDockerHub(host: string): boolean {
  return host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io'
}

const invalid = (message: string) =>
  new ThawError('DOCKER_CONFIG_INVALID', message, { fault: 'user' })
