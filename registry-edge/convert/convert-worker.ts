import { createReadStream, createWriteStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { parentPort } from 'node:worker_threads'
import { isThawError, ThawError } from '../../runtime/errors.ts'
import {
  buildFsIndex,
  encodeBinaryIndex,
  encodeFsIndex,
  ExpansionBudget,
  writableSink,
  writeLayer,
  type LayerToc,
} from '../../runtime/format/index.ts'
import { sha256Of } from '../../runtime/oci/index.ts'
import type { ConvertJob, ConvertReply, ConvertResult } from './convert-job.ts'

/**
 * The body of a conversion worker thread (started by worker-pool.ts through convert-worker.mjs):
 * jobs one after another. zstd-napi compresses synchronously, so this work must stay off the edge's
 * event loop.
 */
async function convert(job: ConvertJob): Promise<ConvertResult> {
  const tocs: LayerToc[] = []
  const budget = new ExpansionBudget(job.expansion)
  for (const [i, layer] of job.layers.entries()) {
    const out = createWriteStream(join(job.outDir, `layer-${i}.blob`), { flags: 'wx' })
    // The file's errors reach the job through writableSink and `finished`. Without a listener,
    // one that comes after a failed layer destroyed the stream mid-write (a limit stops a layer
    // wherever it is) would be an uncaught exception: this thread, and the edge with it, gone.
    out.on('error', () => {})
    let toc: LayerToc
    try {
      toc = await writeLayer(() => createReadStream(layer.path), writableSink(out), {
        compression: layer.compression,
        codec: job.codec,
        level: job.level,
        orderedLevel: job.profiledLevel,
        order: job.order,
        ranges: new Map(job.ranges),
        safety: job.safety,
        budget,
      })
    } catch (err) {
      out.destroy()
      throw inLayer(err, i)
    }
    out.end()
    await finished(out)
    tocs.push(toc)
  }
  const fsIndex = buildFsIndex(tocs)
  const index = encodeFsIndex(fsIndex)
  const indexPath = join(job.outDir, 'index.blob')
  await writeFile(indexPath, index, { flag: 'wx' })
  const binary = encodeBinaryIndex(fsIndex)
  const binaryPath = join(job.outDir, 'index.bin')
  await writeFile(binaryPath, binary, { flag: 'wx' })
  return {
    blobs: tocs.map((t, i) => ({ path: join(job.outDir, `layer-${i}.blob`), ...t.blob })),
    index: { path: indexPath, digest: sha256Of(index), size: index.length },
    binaryIndex: { path: binaryPath, digest: sha256Of(binary), size: binary.length },
    diffIds: tocs.map((t) => t.diffId),
    codec: tocs[0]?.codec ?? job.codec,
  }
}

/** The error with the layer it is about in its message (the user must know which layer to fix). */
function inLayer(err: unknown, i: number): unknown {
  if (!isThawError(err)) return err
  const entry = (err as { entry?: unknown }).entry
  return Object.assign(
    new ThawError(err.code, `layer ${i}: ${err.message}`, { fault: err.fault }),
    { entry },
  )
}

function replyOf(err: unknown): ConvertReply {
  if (isThawError(err)) {
    const entry = (err as { entry?: unknown }).entry
    return {
      ok: false,
      code: err.code,
      message: err.message,
      fault: err.fault,
      ...(typeof entry === 'string' ? { entry } : {}),
    }
  }
  return { ok: false, code: 'CONVERSION_FAILED', message: String(err), fault: 'system' }
}

// Jobs arrive one at a time (the pool sends the next only after this one's reply).
parentPort!.on('message', (job: ConvertJob) => {
  convert(job).then(
    (result) => parentPort!.postMessage({ ok: true, result } satisfies ConvertReply),
    (err: unknown) => parentPort!.postMessage(replyOf(err)),
  )
})
