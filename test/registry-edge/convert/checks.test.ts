import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { expectStatus, pushManifest, sha256, startTestEdge } from '../../support/edge-client.ts'
import { pushTarImage, waitForConversion } from '../../support/convert-image.ts'
import type { TarSpec } from '../../support/tar-builder.ts'
import { parseFsIndex, type FsIndex } from '../../../runtime/format/index.ts'
import type { Descriptor, Digest } from '../../../runtime/oci/index.ts'

const escape = `thaw-edge-escape-${process.pid}`

// Images the edge refuses to convert, each with the code recorded in its status and the entry its
// reason names. Tar content is checked entry by entry while converting (runtime/format TarSafety),
// before anything is written for the entry, and the merged tree when the index is built; nothing
// may land outside the store (/tmp/<escape> is where a naive extractor would write).
const ok: TarSpec[] = [{ name: 'ok', content: 'fine' }]
const badTars: [string, TarSpec[], TarSpec[], string, string][] = [
  // an absolute path
  ['an absolute path', ok, [{ name: `/tmp/${escape}`, content: 'x' }], 'TAR_UNSAFE_PATH', escape],
  // `..` climbs out of the root
  [
    'a path with ..',
    ok,
    [{ name: `a/../../../../tmp/${escape}`, content: 'x' }],
    'TAR_UNSAFE_PATH',
    escape,
  ],
  // a file written through a symlink of the same layer (dir -> /tmp, dir/<escape>)
  [
    'a path through an absolute symlink',
    ok,
    [
      { name: 'dir', type: 'symlink', linkName: '/tmp' },
      { name: `dir/${escape}`, content: 'x' },
    ],
    'TAR_SYMLINK_ESCAPE',
    escape,
  ],
  // a relative symlink deep in the tree that climbs out through its parents (d/e/up -> ../../..)
  [
    'a path through a symlink climbing out through its parents',
    ok,
    [
      { name: 'd/', type: 'directory' },
      { name: 'd/e/', type: 'directory' },
      { name: 'd/e/up', type: 'symlink', linkName: '../../../../../tmp' },
      { name: `d/e/up/${escape}`, content: 'x' },
    ],
    'TAR_SYMLINK_ESCAPE',
    escape,
  ],
  // a symlink in a lower layer and a file through it in the upper one
  [
    'a path through a symlink of a lower layer',
    [{ name: 'lnk', type: 'symlink', linkName: '/tmp' }],
    [{ name: `lnk/${escape}`, content: 'x' }],
    'IMAGE_SYMLINK_ESCAPE',
    escape,
  ],
  // the same path twice
  [
    'a duplicate entry',
    ok,
    [
      { name: 'a', content: '1' },
      { name: './a', content: '2' },
    ],
    'TAR_DUPLICATE_ENTRY',
    'a',
  ],
  // a hard link out of the root
  [
    'a hard link outside the root',
    ok,
    [{ name: 'l', type: 'hardlink', linkName: '../../etc/shadow' }],
    'TAR_HARDLINK_INVALID',
    'l',
  ],
  // an oversized PAX header (an xattr value over 64 KiB)
  [
    'an oversized header',
    ok,
    [{ name: 'f', xattrs: new Map([['user.big', Buffer.alloc(65 * 1024)]]) }],
    'TAR_HEADER_TOO_LARGE',
    'f',
  ],
]

/** Everything under `dir`, relative, excluding the store's own content directories. */
function strayFiles(store: string): string[] {
  const known = ['blobs', 'repositories', 'uploads', 'tmp', 'thaw']
  return readdirSync(store).filter((name) => !known.includes(name))
}

describe('checks before and during conversion', () => {
  // One edge for the whole table: a conversion worker thread takes seconds to start.
  let shared: Promise<{ url: string; store: string }> | undefined
  it.each(badTars)(
    'refuses %s with its reason and writes nothing outside the store',
    async (what, lower, upper, code, entry) => {
      const { url, store } = await (shared ??= startTestEdge({ conversion: {} }))
      const repo = `apps/bad-${badTars.findIndex((row) => row[0] === what)}`
      const image = await pushTarImage(url, repo, 'v1', [lower, upper])
      const status = await waitForConversion(url, repo, image.digest)
      expect(status).toMatchObject({ state: 'skipped', code })
      expect(status.reason).toContain(entry)
      // Tar checks name the layer (0-based); the merged-tree check is about the image as a whole.
      if (code.startsWith('TAR_')) expect(status.reason).toMatch(/^layer 1: /)
      expect(status.artifact).toBeUndefined()
      expect(existsSync(join('/tmp', escape))).toBe(false)
      expect(strayFiles(store)).toEqual([])
      expect(readdirSync(join(store, 'thaw', 'work'))).toEqual([])
      const refs = (await (await fetch(`${url}/v2/${repo}/referrers/${image.digest}`)).json()) as {
        manifests: unknown[]
      }
      expect(refs.manifests).toEqual([])
    },
  )

  // Device nodes are part of real base images (Debian's /dev/console): kept as metadata.
  it('converts an image with device nodes, recording them in the index as metadata', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const layer: TarSpec[] = [
      { name: 'dev/', type: 'directory' },
      { name: 'dev/console', type: 'char', devMajor: 5, devMinor: 1, mode: 0o600 },
      { name: 'dev/sda', type: 'block', devMajor: 8, devMinor: 0, mode: 0o660 },
      { name: 'etc/hostname', content: 'devices\n' },
    ]
    const image = await pushTarImage(url, 'apps/devices', 'v1', [ok, layer])
    const status = await waitForConversion(url, 'apps/devices', image.digest)
    expect(status).toMatchObject({ state: 'converted' })
    const index = await artifactIndex(url, 'apps/devices', String(status.artifact))
    const byPath = new Map(index.entries.map((e) => [e.path.replace(/^\/?/, '/'), e]))
    expect(byPath.get('/dev/console')).toMatchObject({
      type: 'char',
      devMajor: 5,
      devMinor: 1,
      size: 0,
    })
    expect(byPath.get('/dev/sda')).toMatchObject({
      type: 'block',
      devMajor: 8,
      devMinor: 0,
      size: 0,
    })
    expect(byPath.get('/etc/hostname')).toMatchObject({ type: 'file' })
  })

  it('refuses device nodes when the config turns them off', async () => {
    const { url } = await startTestEdge({ conversion: { limits: { allowDevices: false } } })
    const layer: TarSpec[] = [{ name: 'mem', type: 'char', devMajor: 1, devMinor: 1 }]
    const image = await pushTarImage(url, 'apps/nodev', 'v1', [ok, layer])
    const status = await waitForConversion(url, 'apps/nodev', image.digest)
    expect(status).toMatchObject({ state: 'skipped', code: 'TAR_DEVICE_NOT_ALLOWED' })
    expect(String(status.reason)).toMatch(/^layer 1: .*mem/)
  })

  // Images refused before any layer is read, each by one limit or property.
  const preChecks: [
    string,
    { limits?: object; platform?: { os: string; architecture: string } },
    string,
  ][] = [
    // a platform the hosts cannot run
    [
      'a windows image',
      { platform: { os: 'windows', architecture: 'amd64' } },
      'PLATFORM_UNSUPPORTED',
    ],
    // more layers than allowed
    ['too many layers', { limits: { maxLayers: 1 } }, 'TOO_MANY_LAYERS'],
    // a layer over the size limit
    ['a layer over the size limit', { limits: { maxLayerBytes: 10 } }, 'LAYER_TOO_LARGE'],
    // the image over the total limit
    ['an image over the size limit', { limits: { maxImageBytes: 100 } }, 'IMAGE_TOO_LARGE'],
  ]
  it.each(preChecks)('skips %s with its reason', async (_what, { limits, platform }, code) => {
    const { url } = await startTestEdge({ conversion: { limits } })
    const layers = [[{ name: 'a', content: 'a'.repeat(500) }], [{ name: 'b', content: 'b' }]]
    const image = await pushTarImage(url, 'apps/pre', 'v1', layers, platform)
    expect(await waitForConversion(url, 'apps/pre', image.digest)).toMatchObject({
      state: 'skipped',
      code,
    })
  })

  // Images refused while their layers are read, each by one limit: the layer stops at the first
  // byte or entry over it, and the reason names the layer (0-based) and the limit. The layers:
  // 2 048 tar bytes with one entry, then 3 072 with two.
  const readingChecks: [string, object, string, string][] = [
    // the second layer is one byte over
    [
      'a layer over the uncompressed size limit',
      { maxLayerUncompressedBytes: 3071 },
      'LAYER_UNCOMPRESSED_TOO_LARGE',
      'layer 1: decompresses to more than 3071 bytes, the limit for one layer',
    ],
    // each layer is within it, together they are one byte over
    [
      'an image over the uncompressed size limit',
      { maxImageUncompressedBytes: 5119 },
      'IMAGE_UNCOMPRESSED_TOO_LARGE',
      'layer 1: the layers decompress to more than 5119 bytes, the limit for an image',
    ],
    // the second layer has two entries
    [
      'a layer with too many entries',
      { maxLayerEntries: 1 },
      'TAR_TOO_MANY_ENTRIES',
      'layer 1: more than 1 entries: "c"',
    ],
    // three entries in all
    [
      'an image with too many entries',
      { maxImageEntries: 2 },
      'IMAGE_TOO_MANY_ENTRIES',
      'layer 1: the layers have more than 2 entries, the limit for an image',
    ],
  ]
  it.each(readingChecks)(
    'skips %s with the layer and the limit in its reason',
    async (_what, limits, code, reason) => {
      const { url, store } = await startTestEdge({ conversion: { limits } })
      const layers = [
        [{ name: 'a', content: 'a'.repeat(500) }],
        [
          { name: 'b', content: 'b' },
          { name: 'c', content: 'c' },
        ],
      ]
      const image = await pushTarImage(url, 'apps/big', 'v1', layers)
      const status = await waitForConversion(url, 'apps/big', image.digest)
      expect(status).toMatchObject({ state: 'skipped', code, reason })
      expect(status.artifact).toBeUndefined()
      expect(readdirSync(join(store, 'thaw', 'work'))).toEqual([])
    },
  )

  it('skips a layer whose media type is not a tar layer', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const image = await pushTarImage(url, 'apps/mt', 'v1', [[{ name: 'a', content: 'a' }]])
    const manifest = JSON.parse(image.bytes.toString())
    manifest.layers[0].mediaType = 'application/vnd.example.not-a-layer'
    const bytes = JSON.stringify(manifest)
    await expectStatus(await pushManifest(url, 'apps/mt', 'v2', bytes), 201)
    const status = await waitForConversion(url, 'apps/mt', sha256(bytes))
    expect(status).toMatchObject({ state: 'skipped', code: 'MEDIA_TYPE_UNSUPPORTED' })
  })

  it('does not convert when the repository has streaming switched off, and does after switching on', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const put = (streaming: boolean) =>
      fetch(`${url}/v2/apps/off/_thaw/settings`, {
        method: 'PUT',
        body: JSON.stringify({ streaming }),
      })
    expect(await (await fetch(`${url}/v2/apps/off/_thaw/settings`)).json()).toEqual({
      streaming: true,
    })
    const off = await put(false)
    expect(off.status).toBe(200)
    expect(await off.json()).toEqual({ streaming: false })
    const image = await pushTarImage(url, 'apps/off', 'v1', [[{ name: 'a', content: 'a' }]])
    expect(await waitForConversion(url, 'apps/off', image.digest)).toMatchObject({
      state: 'skipped',
      code: 'STREAMING_DISABLED',
    })
    const refs = (await (await fetch(`${url}/v2/apps/off/referrers/${image.digest}`)).json()) as {
      manifests: unknown[]
    }
    expect(refs.manifests).toEqual([])
    // Another repository keeps the default.
    expect(await (await fetch(`${url}/v2/apps/other/_thaw/settings`)).json()).toEqual({
      streaming: true,
    })
    // Bad settings are refused.
    const bad = await fetch(`${url}/v2/apps/off/_thaw/settings`, {
      method: 'PUT',
      body: '{"streaming":"yes"}',
    })
    expect(bad.status).toBe(400)
    // On again: the next push converts.
    await put(true)
    await expectStatus(await pushManifest(url, 'apps/off', 'v2', image.bytes.toString()), 201)
    const converted = await waitForConversion(
      url,
      'apps/off',
      image.digest,
      (s) => s.state === 'converted',
    )
    expect(converted.artifact).toEqual(expect.any(String))
  })

  it('takes the default from the config: streaming off unless a repository turns it on', async () => {
    const { url } = await startTestEdge({ conversion: { streaming: false } })
    const image = await pushTarImage(url, 'apps/def', 'v1', [[{ name: 'a', content: 'a' }]])
    expect(await waitForConversion(url, 'apps/def', image.digest)).toMatchObject({
      code: 'STREAMING_DISABLED',
    })
  })

  it('converts each platform manifest of a pushed index', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const amd = await pushTarImage(url, 'apps/multi', 'amd', [[{ name: 'a', content: 'amd' }]])
    const arm = await pushTarImage(url, 'apps/multi', 'arm', [[{ name: 'a', content: 'arm' }]], {
      os: 'linux',
      architecture: 'arm64',
    })
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: amd.digest,
          size: amd.bytes.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: arm.digest,
          size: arm.bytes.length,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    })
    await expectStatus(
      await pushManifest(url, 'apps/multi', 'v1', index, 'application/vnd.oci.image.index.v1+json'),
      201,
    )
    expect(await waitForConversion(url, 'apps/multi', sha256(index))).toMatchObject({
      state: 'skipped',
      code: 'IMAGE_INDEX',
    })
    for (const image of [amd, arm]) {
      expect(await waitForConversion(url, 'apps/multi', image.digest)).toMatchObject({
        state: 'converted',
      })
    }
  })

  it('answers 404 for the status of an image it never saw and 400 for a bad digest', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    expect((await fetch(`${url}/v2/apps/x/_thaw/status/sha256:${'a'.repeat(64)}`)).status).toBe(404)
    expect((await fetch(`${url}/v2/apps/x/_thaw/status/nope`)).status).toBe(400)
  })
})

/** The index of a streaming artifact, fetched from the edge and verified by its digest. */
async function artifactIndex(url: string, repo: string, artifact: string): Promise<FsIndex> {
  const manifest = (await (await fetch(`${url}/v2/${repo}/manifests/${artifact}`)).json()) as {
    layers: Descriptor[]
  }
  const desc = manifest.layers[0]!
  const bytes = Buffer.from(
    await (await fetch(`${url}/v2/${repo}/blobs/${desc.digest}`)).arrayBuffer(),
  )
  return parseFsIndex(bytes, { digest: desc.digest as Digest })
}
