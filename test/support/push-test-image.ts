import { createHash } from 'node:crypto'
import { chmod, cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { BaseImage } from '../../host/build/base-image.ts'
import { runCommand } from '../../host/os/run-command.ts'
import { tmpDir } from './tmp.ts'

const NODE_MODULES = resolve(import.meta.dirname, '../../node_modules')
const TAR = 'application/vnd.oci.image.layer.v1.tar'

/**
 * Pushes an image made of a Node.js base (host/build/node-base.ts) and one layer holding a
 * function app at /home/site/wwwroot (with @azure/functions and its dependencies copied from
 * thaw's node_modules), to a plain-HTTP registry with the distribution API (monolithic uploads,
 * distribution-spec "POST then PUT"). Returns the reference `host:port/repo:tag`.
 */
export async function pushAppImage(o: {
  registry: string
  repository: string
  tag: string
  base: BaseImage
  files: Record<string, string>
  /** Host files copied into the app folder as executables (name in the app → host path). */
  executables?: Record<string, string>
  /** Copy @azure/functions and its dependencies into the app (default true). */
  azureFunctions?: boolean
  /** Replaces the base's Entrypoint, Cmd or WorkingDir (as `thaw deploy` does for custom handlers). */
  config?: { Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string }
  /** Basic credentials, for an edge with auth on. */
  credentials?: { username: string; password: string }
}): Promise<string> {
  const dir = await tmpDir('thaw-app-image-')
  const root = join(dir, 'root', 'home/site/wwwroot')
  for (const [name, text] of Object.entries(o.files)) {
    await mkdir(dirname(join(root, name)), { recursive: true })
    await writeFile(join(root, name), text)
  }
  for (const [name, source] of Object.entries(o.executables ?? {})) {
    await mkdir(dirname(join(root, name)), { recursive: true })
    await cp(source, join(root, name))
    await chmod(join(root, name), 0o755)
  }
  const modules = o.azureFunctions === false ? [] : ['@azure/functions', '@azure/functions-extensions-base', 'cookie']
  for (const m of modules)
    await cp(join(NODE_MODULES, m), join(root, 'node_modules', m), { recursive: true, dereference: true })
  const appTar = join(dir, 'app.tar')
  await runCommand('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', join(dir, 'root'), '-cf', appTar, '.'])
  const layers = [await readFile(o.base.layer.tar.path), await readFile(appTar)]
  const config = Buffer.from(
    JSON.stringify({
      ...o.base.platform,
      config: { ...o.base.config, ...o.config, Env: [...o.base.config.Env, 'AzureWebJobsScriptRoot=/home/site/wwwroot'] },
      rootfs: { type: 'layers', diff_ids: layers.map(sha256) },
    }),
  )
  const base = `http://${o.registry}/v2/${o.repository}`
  const auth: Record<string, string> = o.credentials
    ? { authorization: `Basic ${Buffer.from(`${o.credentials.username}:${o.credentials.password}`).toString('base64')}` }
    : {}
  for (const blob of [config, ...layers]) await pushBlob(base, blob, auth)
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: TAR, digest: sha256(l), size: l.length })),
  }
  const res = await fetch(`${base}/manifests/${o.tag}`, {
    method: 'PUT',
    headers: { 'content-type': manifest.mediaType, ...auth },
    body: JSON.stringify(manifest),
  })
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`)
  return `${o.registry}/${o.repository}:${o.tag}`
}

async function pushBlob(base: string, blob: Buffer, auth: Record<string, string>): Promise<void> {
  const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: auth })
  if (start.status !== 202) throw new Error(`blob upload: ${start.status}`)
  const location = new URL(start.headers.get('location')!, base)
  location.searchParams.set('digest', sha256(blob))
  const put = await fetch(location, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream', ...auth } })
  if (put.status !== 201) throw new Error(`blob put: ${put.status} ${await put.text()}`)
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
