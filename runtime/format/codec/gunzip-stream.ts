import { pipeline, Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'

/**
 * A gzip stream (RFC 1952, any number of members) decoded on libuv's threadpool, so it overlaps
 * with the JS work of the reader. node:zlib keeps to the reader's pace: it stops inflating when
 * its readable side is full (at most one 256 KiB chunk ahead) and resumes when read. `pipeline`
 * destroys the source and the inflater together when the reader stops early or either fails.
 */
export function gunzipStream(source: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> {
  return pipeline(
    Readable.from(source, { objectMode: false }),
    createGunzip({ chunkSize: 256 * 1024 }),
    () => {}, // errors reach the reader through the inflater's iterator
  )
}
