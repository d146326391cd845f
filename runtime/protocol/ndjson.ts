/**
 * Newline-delimited JSON framing for the control channel: one JSON value per line, "\n"
 * terminated, UTF-8. JSON.stringify never emits a raw newline, so a line is always one message.
 */
export function encodeLine(message: unknown): string {
  return `${JSON.stringify(message)}\n`
}

/**
 * Splits a byte stream into lines. Chunks may end mid-line or mid-character: decoding is deferred
 * until a whole line is there, so multi-byte characters split across chunks stay intact.
 * `maxLine` bounds the memory a peer that never sends "\n" can take.
 */
export function createLineSplitter(
  onLine: (line: string) => void,
  maxLine = 16 * 1024 * 1024,
): (chunk: Buffer) => void {
  let pending: Buffer[] = []
  let pendingBytes = 0
  return (chunk) => {
    let start = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      // The usual line is whole in one chunk: decoded in place, no copy.
      let line: string
      if (pending.length === 0) line = chunk.toString('utf8', start, nl)
      else {
        pending.push(chunk.subarray(start, nl))
        line = Buffer.concat(pending).toString('utf8')
        pending = []
        pendingBytes = 0
      }
      start = nl + 1
      if (line.length > 0) onLine(line)
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start))
      pendingBytes += chunk.length - start
      if (pendingBytes > maxLine) throw new RangeError(`control line longer than ${maxLine} bytes`)
    }
  }
}
