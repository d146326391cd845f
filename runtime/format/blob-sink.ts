import type { Writable } from 'node:stream'

/** Where a streaming blob goes: anything that takes bytes in order, with backpressure. */
export interface BlobSink {
  write(chunk: Uint8Array): Promise<void>
}

/** A sink over a Node Writable (a file stream, an HTTP upload): waits for `drain`. Does not end it. */
export function writableSink(stream: Writable): BlobSink {
  return {
    async write(chunk) {
      if (stream.destroyed) throw new Error('the blob sink is closed')
      if (!stream.write(chunk)) await drained(stream)
    },
  }
}

/** A sink that keeps everything in memory (tests, small layers). */
export function memorySink(): BlobSink & { bytes(): Buffer } {
  const chunks: Uint8Array[] = []
  return {
    async write(chunk) {
      chunks.push(chunk)
    },
    bytes: () => Buffer.concat(chunks),
  }
}

function drained(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off('drain', onDrain)
      stream.off('error', onError)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = () => done()
    const onError = (err: Error) => done(err)
    stream.on('drain', onDrain)
    stream.on('error', onError)
  })
}
