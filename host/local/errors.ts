import { ThawError, type Fault } from '../../runtime/errors.ts'

/**
 * Errors of the local runner, each with a stable code and whose fault it is: `user` for the app or
 * the options (fix your code or config), `system` for thaw or the machine.
 */
export const LOCAL_ERROR_FAULTS = {
  OPTIONS_INVALID: 'user',
  CONFIG_INVALID: 'user',
  HOST_JSON_MISSING: 'user',
  PORT_IN_USE: 'user',
  WORKER_START_FAILED: 'user',
  FUNCTION_NOT_FOUND: 'user',
  FUNCTION_FAILED: 'user',
  RUNNER_DISPOSED: 'user',
  WORKER_EXITED: 'system',
  NO_GENERATION: 'system',
} as const satisfies Record<string, Fault>

export type LocalErrorCode = keyof typeof LOCAL_ERROR_FAULTS

export class LocalRunnerError extends ThawError {
  declare readonly code: LocalErrorCode

  constructor(code: LocalErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { fault: LOCAL_ERROR_FAULTS[code], cause: options.cause })
    this.name = 'LocalRunnerError'
  }
}
