import type { RpcTypedData } from './core-types.ts'

/**
 * Values ⇄ RpcTypedData for non-HTTP invocations, following the library's own converters
 * (toRpcTypedData.ts / fromRpcTypedData.ts) so a value survives the round trip unchanged.
 */
export function toTypedData(value: unknown): RpcTypedData | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') return { string: value }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { bytes: value }
  if (typeof value === 'number') return Number.isInteger(value) ? { int: value } : { double: value }
  return { json: JSON.stringify(value) }
}

/** RpcTypedData → a JSON-friendly value: bytes become base64 strings. */
export function fromTypedData(data: RpcTypedData | null | undefined): unknown {
  if (!data) return null
  if (data.string !== undefined && data.string !== null) return data.string
  if (data.json !== undefined && data.json !== null) return JSON.parse(data.json)
  const bytes = data.bytes ?? data.stream
  if (bytes) return Buffer.from(bytes).toString('base64')
  if (data.int !== undefined && data.int !== null) return Number(data.int)
  if (data.double !== undefined && data.double !== null) return data.double
  if (data.collectionString?.string) return data.collectionString.string
  if (data.collectionDouble?.double) return data.collectionDouble.double
  if (data.collectionSint64?.sint64) return data.collectionSint64.sint64.map(Number)
  if (data.collectionBytes?.bytes) {
    return data.collectionBytes.bytes.map((b) => Buffer.from(b).toString('base64'))
  }
  return null
}
