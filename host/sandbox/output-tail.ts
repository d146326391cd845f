import type { Readable } from 'node:stream'

export type OutputStream = 'stdout' | 'stderr'
export type OutputListener = (stream: OutputStream, chunk: Buffer) => void

/**
 * Drains a node's stdout and stderr from the moment it is spawned, so a node never blocks on a
 * full pipe whether or not anyone listens, and keeps the last `limit` bytes of each for error
 * messages and `output()`. Listeners see every chunk after they are added.
 */
export class OutputTail {
  readonly #limit: number
  readonly #chunks: Record<OutputStream, Buffer[]> = { stdout: [], stderr: [] }
  readonly #sizes: Record<OutputStream, number> = { stdout: 0, stderr: 0 }
  readonly #listeners = new Set<OutputListener>()

  constructor(streams: Record<OutputStream, Readable>, limit = 64 * 1024) {
    this.#limit = limit
    for (const name of ['stdout', 'stderr'] as const) {
      streams[name].on('data', (chunk: Buffer) => this.#push(name, chunk))
      streams[name].on('error', () => {}) // a pipe error ends the stream; the exit says why
    }
  }

  listen(listener: OutputListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  text(stream: OutputStream): string {
    return Buffer.concat(this.#chunks[stream]).toString('utf8')
  }

  #push(stream: OutputStream, chunk: Buffer): void {
    const chunks = this.#chunks[stream]
    chunks.push(chunk)
    this.#sizes[stream] += chunk.length
    // Drop whole chunks while what is left still fills the limit, then trim the oldest one.
    while (chunks.length > 1 && this.#sizes[stream] - chunks[0]!.length >= this.#limit) {
      this.#sizes[stream] -= chunks.shift()!.length
    }
    const excess = this.#sizes[stream] - this.#limit
    if (excess > 0) {
      chunks[0] = chunks[0]!.subarray(excess)
      this.#sizes[stream] = this.#limit
    }
    for (const listener of this.#listeners) listener(stream, chunk)
  }
}
