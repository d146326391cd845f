import { spawn } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import type { ImageMounts, MountLease, MountedImage } from '../../host/mount/image-mounts.ts'
import { pullImage } from '../../runtime/oci/remote/image-transfer.ts'
import { createRegistryClient } from '../../runtime/oci/remote/registry-client.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import type { Profile } from '../../runtime/profile/profile.ts'

/**
 * TEST DOUBLE of ImageMounts (host/mount/image-mounts.ts), for host tests until the real lazy
 * FUSE mounts are integrated. It is not lazy and does not stream: acquire() pulls the image from
 * its registry (over plain HTTP) and unpacks every layer with tar into a directory, shared and
 * reference-counted like the real mounts. Recording sees no file accesses (nothing sits between
 * the node and the files), so started() returns a profile with no entries; replay never
 * happens (`replayed` is false). Whiteouts are not applied (the images tests build have none).
 * Never used by production code.
 */
export interface UnpackedImageMounts extends ImageMounts {
  /** acquire() calls, with their options, in order (tests check record/replay decisions). */
  readonly acquires: { reference: string; record: boolean; replay: boolean }[]
  /** Images unpacked so far (a clearCache forces a new unpack of images not in use). */
  readonly unpacks: number
}

export function createUnpackedImageMounts(dir: string): UnpackedImageMounts {
  const mounted = new Map<string, { root: string; image: MountedImage; users: number }>()
  const acquires: UnpackedImageMounts['acquires'] = []
  let unpacks = 0
  return {
    acquires,
    get unpacks() {
      return unpacks
    },
    async acquire(reference, options = {}) {
      acquires.push({
        reference,
        record: options.record === true || options.record === 'without-bundle',
        replay: options.replay ?? true,
      })
      const t0 = performance.now()
      const ref = parseImageReference(reference)
      const client = createRegistryClient({ registry: `http://${ref.registry}` })
      try {
        const image = await pullImage(client, ref.repository, ref.digest ?? ref.tag!, {
          signal: options.signal,
        })
        const t1 = performance.now()
        let entry = mounted.get(image.digest)
        if (!entry) {
          const root = join(dir, image.digest.replace(':', '-'), 'root')
          await rm(root, { recursive: true, force: true })
          await mkdir(root, { recursive: true, mode: 0o755 })
          for (const layer of image.manifest.layers) {
            const blob = await image.openBlob(layer, { signal: options.signal })
            const gz = layer.mediaType.endsWith('gzip')
            await untar(gz ? blob.pipe(createGunzip()) : blob, root)
          }
          unpacks++
          const mountedImage: MountedImage = {
            reference,
            repository: ref.repository,
            manifest: image.digest,
            artifact: image.digest, // no streaming artifact: the double mounts the image itself
            config: image.config,
          }
          entry = { root, image: mountedImage, users: 0 }
          mounted.set(image.digest, entry)
        }
        entry.users++
        const mountMs = performance.now() - t1
        // It has no bundles: 'without-bundle' records too.
        const record = options.record === true || options.record === 'without-bundle'
        return lease(entry, record, { resolveMs: t1 - t0, mountMs, prefetchMs: 0 })
      } finally {
        await client.close?.()
      }
    },
    async clearCache() {
      for (const [digest, entry] of mounted) {
        if (entry.users > 0) continue
        mounted.delete(digest)
        await rm(join(entry.root, '..'), { recursive: true, force: true })
      }
    },
    async close() {
      mounted.clear()
      await rm(dir, { recursive: true, force: true })
    },
  }

  function lease(
    entry: { root: string; image: MountedImage; users: number },
    record: boolean,
    timings: MountLease['timings'],
  ): MountLease {
    let recording = record
    let released = false
    let ended!: (how: 'started' | 'released') => void
    const startEnded = new Promise<'started' | 'released'>((resolve) => (ended = resolve))
    return {
      root: entry.root,
      image: entry.image,
      timings,
      replayed: false,
      recording: record,
      startEnded,
      fetched: () => ({ requests: 0, bytes: 0 }), // unpacked from a tar up front: nothing on demand
      started(): Profile | undefined {
        ended('started')
        if (!recording) return undefined
        recording = false
        return {
          version: 1,
          subject: entry.image.manifest,
          workload: 'test-double',
          runs: 1,
          entries: [],
        }
      },
      async release() {
        if (released) return
        released = true
        ended('released')
        entry.users--
      },
    }
  }
}

async function untar(stream: NodeJS.ReadableStream, root: string): Promise<void> {
  const tar = spawn('tar', ['-x', '--numeric-owner', '-p', '-C', root], {
    stdio: ['pipe', 'ignore', 'pipe'],
  })
  let stderr = ''
  tar.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<number | null>((r) => tar.once('exit', r))
  await pipeline(stream, tar.stdin)
  const code = await exited
  if (code !== 0) throw new Error(`tar failed (${code}): ${stderr}`)
}
