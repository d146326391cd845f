import { emptyHeader, type EntryType, type TarHeader } from '../../runtime/format/tar/header.ts'
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from '../../runtime/format/tar/writer.ts'

/** One entry for `buildTar`: a name, a type, optional header fields and content. */
export interface TarSpec extends Partial<Omit<TarHeader, 'name' | 'type'>> {
  name: string
  type?: EntryType
  content?: string | Buffer
}

/** A tar archive built entry by entry, without validation (for crafting bad archives too). */
export function buildTar(specs: readonly TarSpec[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = []
  for (const spec of specs) {
    const { content, name, type = 'file', ...fields } = spec
    const body = content === undefined ? Buffer.alloc(0) : Buffer.from(content)
    const h: TarHeader = {
      ...emptyHeader(name, type),
      ...fields,
      size: type === 'file' ? body.length : 0,
    }
    parts.push(encodeTarHeader(h), body, Buffer.alloc(paddingFor(body.length)))
  }
  if (options.end !== false) parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

/** An async iterable of `data` in chunks of `size` bytes (to exercise chunk boundaries). */
export async function* chunked(data: Uint8Array, size = 7919): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size)
}
