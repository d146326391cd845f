import { parentPort } from 'node:worker_threads'
import { createCodec, type Codec, type CodecName } from '../../runtime/format/codec/codec.ts'
import { decodeRun } from '../../runtime/format/frame.ts'
import type { DecodeJob, DecodeReply } from './frame-decoder.ts'

// The body of a frame decoder thread (frame-decoder.ts): verifies and decodes one run of frames
// per message and hands the decoded buffers back without copying them (transferred).
const port = parentPort!
const codecs = new Map<CodecName, Codec>()

port.on('message', (job: DecodeJob) => {
  try {
    let codec = codecs.get(job.codec)
    if (!codec) codecs.set(job.codec, (codec = createCodec(job.codec)))
    const buffers = decodeRun(codec, job.frames, new Uint8Array(job.bytes)).map(
      (out) =>
        out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
          ? (out.buffer as ArrayBuffer)
          : new Uint8Array(out).buffer, // a pooled small buffer: copy it out
    )
    const reply: DecodeReply = { id: job.id, ok: true, buffers }
    port.postMessage(reply, buffers)
  } catch (err) {
    const e = err as { code?: string; message?: string }
    const reply: DecodeReply = {
      id: job.id,
      ok: false,
      code: e.code,
      message: String(e.message ?? err),
    }
    port.postMessage(reply)
  }
})
port.postMessage({ ready: true })
