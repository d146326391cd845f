import { zstdBinding as binding } from './zstd.ts'

/**
 * The largest window a layer's zstd frame may declare: 2^25 = 32 MiB. The window is the decoder's
 * one large allocation (a frame that declares 128 MiB makes it hold 128 MiB, whatever the frame
 * holds), so this bounds its memory. 32 MiB is what OCI tools write at their best compression:
 * klauspost/compress (buildkit, containerd, containers/image) uses 4 to 32 MiB by level, the zstd
 * CLI up to 32 MiB through level 20. RFC 8878 asks decoders for 8 MiB at least, and RFC 9659 makes
 * 8 MiB the most for zstd on the web. A frame that declares more (`zstd --long`, `--ultra -21`)
 * fails with LAYER_DECOMPRESS_FAILED, saying so.
 */
export const ZSTD_WINDOW_LOG_MAX = 25

/** ZSTD_DStreamOutSize(): one whole block (128 KiB), the output size libzstd recommends. */
const OUT_SIZE = binding.dStreamOutSize()

/**
 * A zstd stream (RFC 8878: any number of frames, skippable ones too) decoded only as far as it is
 * pulled. Each step runs ZSTD_decompressStream into one fixed output buffer and hands out a view
 * of what it produced, so the decoder is never more than one block ahead of its reader, whatever
 * the ratio, and allocates nothing per block. A chunk is valid until the next one is pulled: the
 * reader copies what it keeps. (zstd-napi's DecompressStream decodes a whole input chunk at once
 * and pushes every block, each in a new buffer, without waiting for the reader: 64 KiB of a zstd
 * bomb are 2 GiB.)
 */
export async function* zstdStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const dctx = new binding.DCtx()
  dctx.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX)
  const out = Buffer.allocUnsafe(OUT_SIZE)
  let inFrame = false
  for await (const chunk of source) {
    // An empty call between frames would answer "a frame header is next", not "in a frame".
    if (chunk.length === 0) continue
    let input: Uint8Array = chunk
    for (;;) {
      const [remaining, produced, consumed] = decodeStep(dctx, out, input)
      input = input.subarray(consumed)
      inFrame = remaining !== 0
      if (produced > 0) yield out.subarray(0, produced)
      // A full buffer may leave output to flush after the last input byte; a finished frame not.
      if (input.length === 0 && (produced < out.length || !inFrame)) break
    }
  }
  if (inFrame) throw new Error('the stream ends inside a zstd frame')
}

// ZSTD_getErrorName(ZSTD_error_frameParameter_windowTooLarge), the same since libzstd 1.3.
const WINDOW_TOO_LARGE = 'Frame requires too much memory for decoding'

function decodeStep(
  dctx: InstanceType<typeof binding.DCtx>,
  out: Buffer,
  input: Uint8Array,
): [number, number, number] {
  try {
    return dctx.decompressStream(out, input)
  } catch (err) {
    if ((err as Error).message !== WINDOW_TOO_LARGE) throw err
    throw new Error(
      `a frame declares a window over ${2 ** ZSTD_WINDOW_LOG_MAX} bytes (zstd --long or --ultra):` +
        ' recompress the layer without them',
      { cause: err },
    )
  }
}
