import { FormatError } from '../errors.ts'

/**
 * PAX extended header records (POSIX.1-2001 "pax Extended Header"): a sequence of
 * `"<len> <key>=<value>\n"` where <len> counts the whole record, its own digits included.
 * Values are UTF-8, except `SCHILY.xattr.*` values, which are raw bytes (star and GNU tar);
 * libarchive writes `LIBARCHIVE.xattr.<url-encoded name>=<base64 value>`.
 */
export type PaxRecords = Map<string, Buffer>

export function parsePax(data: Buffer, entry: string): PaxRecords {
  const records: PaxRecords = new Map()
  let pos = 0
  while (pos < data.length) {
    if (data[pos] === 0) break // some writers pad the header with NULs
    const space = data.indexOf(0x20, pos)
    const length = space === -1 ? NaN : Number(data.toString('latin1', pos, space))
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > data.length) {
      throw new FormatError('TAR_HEADER_INVALID', 'malformed PAX record', { entry })
    }
    const end = pos + length
    if (data[end - 1] !== 0x0a)
      throw new FormatError('TAR_HEADER_INVALID', 'PAX record without newline', { entry })
    const eq = data.indexOf(0x3d, space + 1)
    if (eq === -1 || eq >= end)
      throw new FormatError('TAR_HEADER_INVALID', 'PAX record without "="', { entry })
    records.set(data.toString('utf8', space + 1, eq), Buffer.from(data.subarray(eq + 1, end - 1)))
    pos = end
  }
  return records
}

/** `"1700000000.5"` → seconds and nanoseconds (floor semantics for negative times). */
export function parsePaxTime(value: string, entry: string): { sec: number; nsec: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value)
  if (!m)
    throw new FormatError('TAR_HEADER_INVALID', `bad PAX time ${JSON.stringify(value)}`, { entry })
  const whole = Number(m[2])
  const nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'))
  if (!Number.isSafeInteger(whole))
    throw new FormatError('TAR_HEADER_INVALID', 'PAX time out of range', { entry })
  if (m[1] !== '-') return { sec: whole, nsec }
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - nsec }
}

export function formatPaxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec)
  if (sec >= 0) return `${sec}.${String(nsec).padStart(9, '0').replace(/0+$/, '')}`
  // -1.5 s is stored as sec -2, nsec 5e8
  const frac = String(1e9 - nsec)
    .padStart(9, '0')
    .replace(/0+$/, '')
  return `-${-sec - 1}.${frac}`
}

export function encodePaxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')])
  let digits = String(body.length).length
  while (String(body.length + digits).length !== digits) digits++
  return Buffer.concat([Buffer.from(String(body.length + digits)), body])
}
