/** Number of chunks of `chunkSize` bytes a blob of `size` bytes has (the last may be short). */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize)
}

/** Length of chunk `index`: `chunkSize`, except the blob's last chunk. */
export function chunkLength(size: number, chunkSize: number, index: number): number {
  return Math.min(chunkSize, size - index * chunkSize)
}

/** The chunk holding byte `offset`. */
export function chunkIndex(offset: number, chunkSize: number): number {
  return Math.floor(offset / chunkSize)
}
