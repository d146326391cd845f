import { createReadStream, createWriteStream, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writableSink } from '../../runtime/format/blob-sink.ts'
import { fileRangeSource } from '../../runtime/format/file-range-source.ts'
import { buildFsIndex } from '../../runtime/format/image-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../runtime/format/index-codec.ts'
import { writeLayer } from '../../runtime/format/layer-writer.ts'
import { openImage } from '../../runtime/format/reader.ts'
import { debianLayerTar } from '../support/debian-rootfs.ts'
import { run } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'
import { diffSnapshots, snapshotDisk, snapshotReader } from '../support/tree-snapshot.ts'

// A real Debian root filesystem (debootstrap minbase bookworm, cached under /var/tmp/thaw-cache),
// packed by GNU tar with numeric owners and xattrs, converted and read back through the index.
const layer = await debianLayerTar()

describe.skipIf(layer.skipped !== undefined)(
  `format round trip on a real Debian rootfs${layer.skipped ? ` (skipped: ${layer.skipped})` : ''}`,
  () => {
    it('reads through the index the same tree as GNU tar extracts from the layer', async () => {
      const dir = await tmpDir('thaw-format-debian-')
      const blob = join(dir, 'stream')
      const out = createWriteStream(blob)
      // debootstrap creates /dev/null and friends: real images sometimes carry them.
      const toc = await writeLayer(
        () => createReadStream(layer.path!, { highWaterMark: 1 << 20 }),
        writableSink(out),
        {
          compression: 'none',
          safety: { allowDevices: true },
          order: ['/usr/bin/bash', '/etc/passwd', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
        },
      )
      await new Promise((resolve) => out.end(resolve))
      expect(toc.entries.length).toBeGreaterThan(5000)
      expect(toc.prefetchEnd).toBeGreaterThan(0)

      const listed = (await run('sh', ['-c', `zstd -d < '${blob}' | tar -t | wc -l`])).stdout.trim()
      expect(Number(listed)).toBe(toc.entries.length)

      const index = parseFsIndex(encodeFsIndex(buildFsIndex([toc])))
      const source = fileRangeSource([blob])
      const got = await snapshotReader(openImage(index, source))
      await source.close()

      const extracted = join(dir, 'extracted')
      mkdirSync(extracted)
      await run('tar', [
        '-x',
        '--numeric-owner',
        '--xattrs',
        '--xattrs-include=*',
        '-p',
        '-C',
        extracted,
        '-f',
        layer.path!,
      ])
      const want = snapshotDisk(extracted)
      expect(diffSnapshots(want, got)).toEqual([])
      expect([...got.values()].some((n) => n.type === 'char')).toBe(true)
      expect([...got.values()].some((n) => n.links.length > 0)).toBe(true)
    })
  },
)
