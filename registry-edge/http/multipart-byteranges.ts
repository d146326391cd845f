import { randomBytes } from 'node:crypto'
import type { ByteRange } from '../backend/registry-backend.ts'
import { contentRange } from './range-header.ts'

/**
 * A `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1) for several ranges of one blob,
 * with its exact length computed up front so the response has a Content-Length:
 *
 *   --B CRLF Content-Type: T CRLF Content-Range: bytes a-b/size CRLF CRLF <bytes a..b>
 *   CRLF --B CRLF ... CRLF <bytes c..d>
 *   CRLF --B-- CRLF
 *
 * Each part's bytes are opened only when the part is reached, so at most one range is being read
 * at a time and nothing is buffered beyond what the range reader yields.
 */
export interface MultipartBody {
  contentType: string
  length: number
  body: ReadableStream<Uint8Array>
}

export function multipartByteranges(
  ranges: ByteRange[],
  size: number,
  partType: string,
  open: (range: ByteRange) => ReadableStream<Uint8Array>,
): MultipartBody {
  const boundary = randomBytes(15).toString('hex')
  const pieces: (Uint8Array | ByteRange)[] = []
  ranges.forEach((range, i) => {
    const head =
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\n` +
      `Content-Type: ${partType}\r\nContent-Range: ${contentRange(range, size)}\r\n\r\n`
    pieces.push(Buffer.from(head, 'latin1'), range)
  })
  pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'))
  const length = pieces.reduce(
    (sum, p) => sum + (p instanceof Uint8Array ? p.byteLength : p.end - p.start + 1),
    0,
  )
  return {
    contentType: `multipart/byteranges; boundary=${boundary}`,
    length,
    body: concatStreams(pieces, open),
  }
}

function concatStreams(
  pieces: (Uint8Array | ByteRange)[],
  open: (range: ByteRange) => ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  let index = 0
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (reader) {
          const { done, value } = await reader.read()
          if (!done) return controller.enqueue(value)
          reader = undefined
        }
        const piece = pieces[index++]
        if (piece === undefined) return controller.close()
        if (piece instanceof Uint8Array) return controller.enqueue(piece)
        reader = open(piece).getReader()
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason)
    },
  })
}
