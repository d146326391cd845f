/**
 * Parses a multipart/byteranges body (RFC 9110 §14.6) into its parts, strictly: every delimiter,
 * header line and CRLF must be where RFC 2046 puts it, or this throws.
 */
export interface BytePart {
  contentRange: string
  contentType: string
  data: Buffer
}

export function parseByteranges(contentType: string, body: Buffer): BytePart[] {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1]
  if (!boundary) throw new Error(`no boundary in ${contentType}`)
  const parts: BytePart[] = []
  let at = 0
  const expect = (text: string) => {
    if (body.toString('latin1', at, at + text.length) !== text) {
      throw new Error(`expected ${JSON.stringify(text)} at ${at}, got ${JSON.stringify(body.toString('latin1', at, at + 40))}`)
    }
    at += text.length
  }
  expect(`--${boundary}`)
  while (body.toString('latin1', at, at + 2) === '\r\n') {
    at += 2
    const headers: Record<string, string> = {}
    for (;;) {
      const eol = body.indexOf('\r\n', at, 'latin1')
      const line = body.toString('latin1', at, eol)
      at = eol + 2
      if (line === '') break
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers['content-range'] ?? '')
    if (!m) throw new Error(`bad part Content-Range ${headers['content-range']}`)
    const length = Number(m[2]) - Number(m[1]) + 1
    parts.push({ contentRange: headers['content-range']!, contentType: headers['content-type'] ?? '', data: body.subarray(at, at + length) })
    at += length
    expect(`\r\n--${boundary}`)
  }
  expect('--\r\n')
  if (at !== body.length) throw new Error(`${body.length - at} bytes after the closing delimiter`)
  return parts
}
