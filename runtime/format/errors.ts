import { ThawError, type Fault } from '../errors.ts'

/**
 * Every failure of the streaming format, with a stable code. Tar and layer codes are user faults
 * (the image is bad: conversion is refused with this reason); frame and index codes are system
 * faults (bytes were corrupted in storage or in transit, or the artifact is broken).
 */
export const FORMAT_ERROR_FAULT = {
  // The original layer (tar) is unsafe or malformed.
  TAR_UNSAFE_PATH: 'user',
  TAR_SYMLINK_ESCAPE: 'user',
  TAR_DUPLICATE_ENTRY: 'user',
  TAR_PARENT_NOT_DIRECTORY: 'user',
  TAR_DEVICE_NOT_ALLOWED: 'user',
  TAR_HARDLINK_INVALID: 'user',
  TAR_HEADER_TOO_LARGE: 'user',
  TAR_NAME_TOO_LONG: 'user',
  TAR_HEADER_INVALID: 'user',
  TAR_UNSUPPORTED_ENTRY: 'user',
  TAR_TRUNCATED: 'user',
  TAR_TOO_MANY_ENTRIES: 'user',
  TAR_FILE_TOO_LARGE: 'user',
  LAYER_DECOMPRESS_FAILED: 'user',
  // A layer or an image expands past the limits (ExpansionLimits) as it is decompressed.
  LAYER_UNCOMPRESSED_TOO_LARGE: 'user',
  IMAGE_UNCOMPRESSED_TOO_LARGE: 'user',
  IMAGE_TOO_MANY_ENTRIES: 'user',
  LAYER_ORDER_NEEDS_REOPEN: 'user',
  // A merged image is unsafe (a layer writes through a symlink or a file of a lower layer).
  IMAGE_SYMLINK_ESCAPE: 'user',
  IMAGE_PARENT_NOT_DIRECTORY: 'user',
  // A frame of a streaming blob is not what the index says.
  FRAME_DIGEST_MISMATCH: 'system',
  FRAME_TRUNCATED: 'system',
  FRAME_SIZE_MISMATCH: 'system',
  FRAME_DECODE_FAILED: 'system',
  // The index blob is not what the manifest says, or does not fit its blobs.
  INDEX_DIGEST_MISMATCH: 'system',
  INDEX_INVALID: 'system',
  INDEX_TOO_LARGE: 'system',
  INDEX_OUT_OF_BOUNDS: 'system',
  // A read through the index.
  ENTRY_NOT_FOUND: 'user',
  ENTRY_WRONG_TYPE: 'user',
} as const satisfies Record<string, Fault>

export type FormatErrorCode = keyof typeof FORMAT_ERROR_FAULT

export class FormatError extends ThawError {
  declare readonly code: FormatErrorCode
  /** The tar entry or path the error is about, when there is one. */
  readonly entry: string | undefined

  constructor(
    code: FormatErrorCode,
    message: string,
    options: { entry?: string; cause?: unknown } = {},
  ) {
    super(
      code,
      options.entry === undefined ? message : `${message}: ${JSON.stringify(options.entry)}`,
      {
        fault: FORMAT_ERROR_FAULT[code],
        cause: options.cause,
      },
    )
    this.name = 'FormatError'
    this.entry = options.entry
  }
}

export function isFormatError(err: unknown, code?: FormatErrorCode): err is FormatError {
  return (
    err instanceof Error &&
    err.name === 'FormatError' &&
    (code === undefined || (err as FormatError).code === code)
  )
}
