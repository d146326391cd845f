import { ThawError } from '../../runtime/errors.ts'

/**
 * Why a mount operation failed. `FRAME_UNAVAILABLE` is what a read turns into EIO: every source was
 * tried (and retried) and none gave bytes that verified.
 */
export type MountErrorCode =
  | 'IMAGE_NOT_STREAMABLE'
  | 'ARTIFACT_MISMATCH'
  | 'SOURCES_UNAVAILABLE'
  | 'FRAME_UNAVAILABLE'
  | 'MOUNT_FAILED'
  | 'MOUNT_CLOSED'

const USER_FAULTS: ReadonlySet<MountErrorCode> = new Set(['IMAGE_NOT_STREAMABLE'])

export class MountError extends ThawError {
  declare readonly code: MountErrorCode
  constructor(code: MountErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { fault: USER_FAULTS.has(code) ? 'user' : 'system', cause: options.cause })
    this.name = 'MountError'
  }
}

/** What a filesystem operation answers instead of data; the FUSE adapter maps it to an errno. */
export type FsErrorCode = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'EIO' | 'ENODATA' | 'EROFS'

export class FsError extends Error {
  readonly code: FsErrorCode
  constructor(code: FsErrorCode, message: string = code) {
    super(message)
    this.name = 'FsError'
    this.code = code
  }
}
