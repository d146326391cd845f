import { ThawError } from '../../runtime/errors.ts'

/**
 * A snapshotter answer other than success, by containerd's errdefs class (containerd maps the
 * gRPC status back to errdefs: AlreadyExists is what tells the unpacker a layer is there).
 */
export type SnapshotErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'INVALID_ARGUMENT'
  | 'UNAVAILABLE'
  | 'INTERNAL'

const USER_FAULTS: ReadonlySet<SnapshotErrorCode> = new Set([
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'INVALID_ARGUMENT',
])

export class SnapshotError extends ThawError {
  declare readonly code: SnapshotErrorCode
  constructor(code: SnapshotErrorCode, message: string, cause?: unknown) {
    super(code, message, { fault: USER_FAULTS.has(code) ? 'user' : 'system', cause })
    this.name = 'SnapshotError'
  }
}
