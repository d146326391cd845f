/**
 * Conversion benchmark: throughput (MB/s of the original compressed layers) and size overhead of
 * the streaming blobs against the original layers, on real images:
 *   - debian: debootstrap minbase bookworm as one tar+gzip layer (test/support/debian-rootfs.ts)
 *   - multi:  the ~1 GB, 28-layer image of shared/peers/11-build-images.sh, if built (an OCI
 *             layout at $THAW_CACHE/peers/oci/layout, tag `multi`)
 * With --estargz, also times `ctr-remote image convert --estargz --oci` on the same image, side by
 * side (test/bench/estargz-convert.sh: a private containerd, stopped afterwards).
 *
 *   npx tsx test/bench/convert.ts [--images debian,multi] [--levels 3,6,9] [--codec zstd|gzip]
 *                                 [--jobs 1|2] [--estargz]
 */
import { spawnSync } from 'node:child_process'
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  rmSync,
  statSync,
} from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writableSink } from '../../runtime/format/blob-sink.ts'
import type { CodecName } from '../../runtime/format/codec/codec.ts'
import { buildFsIndex } from '../../runtime/format/image-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../runtime/format/index-codec.ts'
import type { LayerToc } from '../../runtime/format/layer-toc.ts'
import { writeLayer } from '../../runtime/format/layer-writer.ts'
import { openImage } from '../../runtime/format/reader.ts'
import { debianLayerTar, THAW_CACHE } from '../support/debian-rootfs.ts'
import { layoutLayers, type LayoutLayer } from '../support/oci-layout.ts'

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: 'debian,multi' },
    levels: { type: 'string', default: '3' },
    codec: { type: 'string', default: 'zstd' },
    jobs: { type: 'string', default: '1' },
    estargz: { type: 'boolean', default: false },
  },
})
const MB = 1e6
const OUT = join(THAW_CACHE, 'bench-out')

interface BenchImage {
  name: string
  layers: Pick<LayoutLayer, 'path' | 'compression' | 'size'>[]
  layout?: { dir: string; tag: string }
}

async function images(): Promise<BenchImage[]> {
  const out: BenchImage[] = []
  const wanted = args.images.split(',')
  if (wanted.includes('debian')) {
    const tar = await debianLayerTar()
    if (tar.skipped !== undefined) console.log(`debian: skipped (${tar.skipped})`)
    else {
      // One tar+gzip layer made by umoci (a standard tool), in an OCI layout ctr-remote can import.
      const dir = join(THAW_CACHE, 'debian-bookworm-minbase/layout')
      if (!existsSync(join(dir, 'index.json'))) {
        const sh = `set -e; rm -rf '${dir}.tmp'; umoci init --layout '${dir}.tmp'; umoci new --image '${dir}.tmp:debian'
          umoci raw add-layer --image '${dir}.tmp:debian' '${tar.path}'; mv '${dir}.tmp' '${dir}'`
        spawnSync('flock', [join(THAW_CACHE, 'debian-bookworm-minbase/lock'), 'sh', '-c', sh], {
          stdio: 'inherit',
        })
      }
      out.push({
        name: 'debian (1 layer, tar+gzip by umoci)',
        layers: layoutLayers(dir, 'debian').layers,
        layout: { dir, tag: 'debian' },
      })
    }
  }
  const layout = join(THAW_CACHE, 'peers/oci/layout')
  if (wanted.includes('multi')) {
    if (!existsSync(join(layout, 'index.json')))
      console.log(
        `multi: skipped (no OCI layout at ${layout}; build it with shared/peers/11-build-images.sh)`,
      )
    else
      out.push({
        name: 'multi (28 layers, tar+gzip)',
        layers: layoutLayers(layout, 'multi').layers,
        layout: { dir: layout, tag: 'multi' },
      })
  }
  return out
}

/** Converts layers with `jobs` concurrent conversions (gunzip runs on the threadpool). */
async function convertImage(image: BenchImage, codec: CodecName, level: number, jobs: number) {
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })
  const tocs: LayerToc[] = new Array(image.layers.length)
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let i = next++; i < image.layers.length; i = next++) {
        const layer = image.layers[i]!
        const out = createWriteStream(join(OUT, `stream-${i}`))
        tocs[i] = await writeLayer(
          () => createReadStream(layer.path, { highWaterMark: 1 << 20 }),
          writableSink(out),
          {
            compression: layer.compression,
            codec,
            level,
            safety: { allowDevices: true },
          },
        )
        await new Promise((resolve) => out.end(resolve))
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const original = image.layers.reduce((s, l) => s + l.size, 0)
  const streaming = tocs.reduce((s, t) => s + t.blob.size, 0)
  const tar = tocs.reduce((s, t) => s + t.tarSize, 0)
  const frames = tocs.reduce((s, t) => s + t.frames.length, 0)
  return { tocs, seconds, original, streaming, tar, frames }
}

function indexFigures(tocs: LayerToc[]) {
  let t = performance.now()
  const index = buildFsIndex(tocs)
  const buildMs = performance.now() - t
  t = performance.now()
  const bytes = encodeFsIndex(index)
  const encodeMs = performance.now() - t
  const parses: number[] = []
  let parsed = index
  for (let i = 0; i < 5; i++) {
    t = performance.now()
    parsed = parseFsIndex(bytes)
    parses.push(performance.now() - t)
  }
  t = performance.now()
  openImage(parsed, { read: async () => new Uint8Array() })
  const openMs = performance.now() - t
  parses.sort((a, b) => a - b)
  return {
    entries: index.entries.length,
    bytes: bytes.length,
    buildMs,
    encodeMs,
    parseMs: parses[2]!,
    firstParseMs: parses[0]!,
    openMs,
  }
}

function estargz(image: BenchImage): { seconds: number; bytes: number } | string {
  if (!image.layout) return 'no OCI layout'
  const script = join(import.meta.dirname, 'estargz-convert.sh')
  const res = spawnSync('bash', [script, image.layout.dir, image.layout.tag], { encoding: 'utf8' })
  const line = res.stdout.trim().split('\n').at(-1) ?? ''
  if (res.status !== 0 || !line.startsWith('{'))
    return `failed: ${(res.stderr || res.stdout).slice(-500)}`
  return JSON.parse(line) as { seconds: number; bytes: number }
}

const fmt = (n: number, d = 1) => n.toFixed(d)
console.log(
  `node ${process.version}, ${cpus().length} cpus (${cpus()[0]?.model}), codec ${args.codec}, levels ${args.levels}, jobs ${args.jobs}`,
)
for (const image of await images()) {
  console.log(
    `\n== ${image.name}: ${image.layers.length} layers, ${fmt(image.layers.reduce((s, l) => s + l.size, 0) / MB)} MB compressed`,
  )
  for (const level of args.levels.split(',').map(Number)) {
    const r = await convertImage(image, args.codec as CodecName, level, Number(args.jobs))
    console.log(
      `${args.codec}-${level}: ${fmt(r.seconds, 2)} s, ${fmt(r.original / MB / r.seconds)} MB/s of original compressed layers ` +
        `(${fmt(r.tar / MB / r.seconds)} MB/s uncompressed); streaming ${fmt(r.streaming / MB)} MB vs original ` +
        `${fmt(r.original / MB)} MB = ${r.streaming >= r.original ? '+' : ''}${fmt((r.streaming / r.original - 1) * 100)}%; ` +
        `${r.frames} frames, ${fmt(r.tar / r.frames / 1024, 0)} KiB average`,
    )
    if (level === Number(args.levels.split(',')[0])) {
      const ix = indexFigures(r.tocs)
      console.log(
        `index: ${ix.entries} entries, ${fmt(ix.bytes / 1024, 0)} KiB (zstd); build ${fmt(ix.buildMs, 0)} ms, encode ` +
          `${fmt(ix.encodeMs, 0)} ms, parse+verify ${fmt(ix.parseMs, 0)} ms (median of 5; first ${fmt(ix.firstParseMs, 0)} ms), openImage ${fmt(ix.openMs, 0)} ms`,
      )
    }
  }
  if (args.estargz) {
    const e = estargz(image)
    if (typeof e === 'string') console.log(`ctr-remote --estargz: ${e}`)
    else {
      const original = image.layers.reduce((s, l) => s + l.size, 0)
      console.log(
        `ctr-remote image convert --estargz --oci: ${fmt(e.seconds, 2)} s, ${fmt(original / MB / e.seconds)} MB/s; ` +
          `eStargz ${fmt(e.bytes / MB)} MB = ${e.bytes >= original ? '+' : ''}${fmt((e.bytes / original - 1) * 100)}%`,
      )
    }
  }
}
rmSync(OUT, { recursive: true, force: true })
