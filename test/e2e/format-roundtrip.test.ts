import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writableSink } from '../../runtime/format/blob-sink.ts'
import { fileRangeSource } from '../../runtime/format/file-range-source.ts'
import { buildFsIndex } from '../../runtime/format/image-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../runtime/format/index-codec.ts'
import type { LayerToc } from '../../runtime/format/layer-toc.ts'
import { writeLayer } from '../../runtime/format/layer-writer.ts'
import { openImage } from '../../runtime/format/reader.ts'
import { layoutLayers, type LayoutLayer } from '../support/oci-layout.ts'
import { run } from '../support/processes.ts'
import { createRng, generateTree, mutateTree, type Rng } from '../support/random-tree.ts'
import { tmpDir } from '../support/tmp.ts'
import { diffSnapshots, snapshotDisk, snapshotReader } from '../support/tree-snapshot.ts'

// Small frames so that files of a few hundred KB span several of them.
const FRAMING = { groupBytes: 16 * 1024, splitBytes: 64 * 1024 }
const TREE = { entries: 160, largeBytes: 150_000 }

/**
 * A random image made by a standard tool: layer 1 a random tree, layer 2 that tree changed
 * (umoci repack writes the whiteouts), layer 3 a hand-made layer with an opaque directory and
 * a whiteout (umoci never writes opaque markers itself), appended with `umoci raw add-layer`.
 */
async function randomImage(dir: string, rng: Rng): Promise<string> {
  const layout = join(dir, 'layout')
  const bundle = join(dir, 'bundle')
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', `${layout}:t`])
  await run('umoci', ['unpack', '--image', `${layout}:t`, bundle])
  const rootfs = join(bundle, 'rootfs')
  generateTree(rootfs, rng, TREE)
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  mutateTree(rootfs, rng, TREE)
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  const dirs = (
    await run('find', [rootfs, '-mindepth', '1', '-maxdepth', '2', '-type', 'd'])
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean)
  const files = (
    await run('find', [rootfs, '-mindepth', '1', '-maxdepth', '2', '-type', 'f'])
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean)
  const stage = join(dir, 'layer3')
  const opaque = rng.pick(dirs).slice(rootfs.length + 1)
  mkdirSync(join(stage, opaque), { recursive: true })
  writeFileSync(join(stage, opaque, '.wh..wh..opq'), '')
  writeFileSync(join(stage, opaque, 'after-opaque'), 'new in layer 3')
  const gone = rng.pick(files).slice(rootfs.length + 1)
  if (!gone.startsWith(opaque + '/')) {
    mkdirSync(join(stage, gone, '..'), { recursive: true })
    writeFileSync(
      join(
        stage,
        gone.replace(/[^/]+$/, (b) => `.wh.${b}`),
      ),
      '',
    )
  }
  await run('tar', [
    '--numeric-owner',
    '--format=pax',
    '--sort=name',
    '-C',
    stage,
    '-cf',
    join(dir, 'layer3.tar'),
    '.',
  ])
  await run('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, join(dir, 'layer3.tar')])
  return layout
}

async function convert(dir: string, layers: LayoutLayer[], order: string[] = []) {
  const tocs: LayerToc[] = []
  const paths: string[] = []
  for (const [i, layer] of layers.entries()) {
    const path = join(dir, `stream-${i}`)
    const out = createWriteStream(path)
    tocs.push(
      await writeLayer(layer.open, writableSink(out), {
        compression: layer.compression,
        order,
        ...FRAMING,
      }),
    )
    await new Promise((resolve) => out.end(resolve))
    paths.push(path)
  }
  const index = parseFsIndex(encodeFsIndex(buildFsIndex(tocs)))
  return { tocs, paths, index }
}

describe('format round trip on random images built with umoci', () => {
  it.each([1, 2, 3])(
    'reads through the index the same tree as umoci unpack (seed %i)',
    async (seed) => {
      const dir = await tmpDir('thaw-format-e2e-')
      const rng = createRng(seed)
      const layout = await randomImage(dir, rng)
      const { layers, diffIds } = layoutLayers(layout, 't')
      expect(layers).toHaveLength(3)
      const expected = join(dir, 'unpacked')
      await run('umoci', ['unpack', '--image', `${layout}:t`, expected])
      const want = snapshotDisk(join(expected, 'rootfs'))

      // Half of the images are converted with an order (a fake profile of random files).
      const order = seed % 2 === 0 ? [...want.keys()].filter(() => rng.chance(0.2)) : []
      const { tocs, paths, index } = await convert(dir, layers, order)
      expect(tocs.map((t) => t.diffId)).toEqual(diffIds)
      const source = fileRangeSource(paths)
      const got = await snapshotReader(openImage(index, source))
      await source.close()
      // The rootfs directory itself is made by umoci at unpack time (no layer has a "./" entry
      // except the hand-made one), so its mtime is not the image's.
      const inLayers = new Set(tocs.flatMap((t) => t.entries.map((e) => e.path)))
      const diffs = diffSnapshots(want, got, (p) => p === '' || !inLayers.has(p))
      expect(diffs).toEqual([])
      expect(got.size).toBeGreaterThan(100)
      if (order.length > 0) expect(tocs.some((t) => t.prefetchEnd > 0)).toBe(true)
    },
  )

  it('writes blobs that zstd and GNU tar list and extract to the same files as the original layers', async () => {
    const dir = await tmpDir('thaw-format-e2e-')
    const layout = await randomImage(dir, createRng(7))
    const { layers } = layoutLayers(layout, 't')
    const { tocs, paths } = await convert(dir, layers)
    for (const [i, layer] of layers.entries()) {
      const listed = (await run('sh', ['-c', `zstd -d < '${paths[i]}' | tar -t`])).stdout
        .trim()
        .split('\n')
      expect(listed).toHaveLength(tocs[i]!.entries.length)
      const a = join(dir, `orig-${i}`)
      const b = join(dir, `conv-${i}`)
      mkdirSync(a)
      mkdirSync(b)
      // Timestamp warnings depend on the clock, not on the content.
      const x = `tar -x --warning=no-timestamp --numeric-owner --xattrs --xattrs-include='*' -p`
      const decompress =
        layer.compression === 'gzip'
          ? 'gzip -dc'
          : layer.compression === 'zstd'
            ? 'zstd -dc'
            : 'cat'
      // umoci writes whiteouts under a directory it replaced by a file (`f`, `f/.wh.x`); GNU tar
      // cannot create those (ENOTDIR) and exits 2. The same entries must fail on both sides.
      const errorsOf = async (cmd: string) =>
        (
          await run('sh', [
            '-c',
            `${cmd} 2>&1 >/dev/null | sed 's#^tar: ${dir}/[^/]*/##' | sort; true`,
          ])
        ).stdout
      const origErrors = await errorsOf(`${decompress} < '${layer.path}' | ${x} -C '${a}'`)
      const convErrors = await errorsOf(`zstd -d < '${paths[i]}' | ${x} -C '${b}'`)
      expect(convErrors.replaceAll(b, 'ROOT')).toBe(origErrors.replaceAll(a, 'ROOT'))
      const inLayer = new Set(tocs[i]!.entries.map((e) => e.path))
      expect(diffSnapshots(snapshotDisk(a), snapshotDisk(b), (p) => !inLayer.has(p))).toEqual([])
    }
  })
})
