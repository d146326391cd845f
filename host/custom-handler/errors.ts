import { ThawError, type Fault } from '../../runtime/errors.ts'

export type CustomHandlerErrorCode =
  | 'CUSTOM_HANDLER_CONFIG_INVALID'
  | 'FUNCTION_JSON_INVALID'
  | 'CUSTOM_HANDLER_START_FAILED'
  | 'CUSTOM_HANDLER_FAILED'
  | 'CUSTOM_HANDLER_BAD_RESPONSE'

export class CustomHandlerError extends ThawError {
  declare readonly code: CustomHandlerErrorCode

  constructor(
    code: CustomHandlerErrorCode,
    message: string,
    options: { fault?: Fault; cause?: unknown } = {},
  ) {
    super(code, message, { fault: options.fault ?? 'user', cause: options.cause })
    this.name = 'CustomHandlerError'
  }
}
