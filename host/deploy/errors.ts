import { ThawError, type Fault } from '../../runtime/errors.ts'

export type DeployErrorCode =
  | 'APP_NOT_FOUND'
  | 'APP_KIND_UNKNOWN'
  | 'APP_CONFIG_INVALID'
  | 'TYPESCRIPT_BUILD_FAILED'
  | 'DEPENDENCY_MISSING'
  | 'ARTIFACT_TIMEOUT'
  | 'ARTIFACT_FAILED'
  | 'HOST_REJECTED'
  | 'HOST_UNREACHABLE'
  | 'REVISION_FAILED'
  | 'DEPLOY_OPTIONS_INVALID'

// A timeout and an unreachable host are reported as the user's: the usual cause is an edge
// without conversion or a wrong --host, and the message says what to do (one line, no stack).
const SYSTEM: ReadonlySet<DeployErrorCode> = new Set([])

/** A failure of `thaw deploy`; `fault` says whether the app/flags (user) or a service (system) is at fault. */
export class DeployError extends ThawError {
  declare readonly code: DeployErrorCode

  constructor(
    code: DeployErrorCode,
    message: string,
    options: { fault?: Fault; cause?: unknown } = {},
  ) {
    super(code, message, {
      fault: options.fault ?? (SYSTEM.has(code) ? 'system' : 'user'),
      cause: options.cause,
    })
    this.name = 'DeployError'
  }
}
