import type { Digest } from '../../runtime/oci/index.ts'
import type { CodecName, ExpansionLimits, TarSafetyOptions } from '../../runtime/format/index.ts'
import type { LayerCompression } from '../../runtime/oci/index.ts'

/**
 * What the main thread sends a conversion worker (structured-clone data only): the original
 * layers, already copied to local files (so the worker needs no backend and can read a layer twice
 * when an order is given), and the directory its outputs go to.
 */
export interface ConvertJob {
  layers: { path: string; compression: LayerCompression }[]
  /** Profile paths to place first; empty for the original order. */
  order: string[]
  /** The byte ranges the profiles read, per path of `order` (none: read whole). */
  ranges?: [string, [number, number][]][]
  /** Level of the placed part. */
  profiledLevel?: number
  /** Where `layer-<i>.blob` and `index.blob` are written; nothing is written elsewhere. */
  outDir: string
  codec: CodecName
  level?: number
  /** Checks of each layer's entries (TarSafety, per layer). */
  safety: TarSafetyOptions
  /** Uncompressed bytes per layer and per image, entries per image (one ExpansionBudget). */
  expansion: ExpansionLimits
}

export interface ConvertedFile {
  path: string
  digest: Digest
  size: number
}

export interface ConvertResult {
  blobs: ConvertedFile[]
  index: ConvertedFile
  /** The same index in binary form (runtime/format/binary-index.ts). */
  binaryIndex: ConvertedFile
  /** The original layers' DiffIDs as the Writer computed them, bottom first. */
  diffIds: Digest[]
  codec: CodecName
}

/** A worker's answer: the result, or the error's code and message (errors do not cross threads). */
export type ConvertReply =
  | { ok: true; result: ConvertResult }
  | { ok: false; code: string; message: string; fault: 'user' | 'system'; entry?: string }
