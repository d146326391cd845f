export { CustomHandlerError, type CustomHandlerErrorCode } from './errors.ts'
export { parseCustomHandlerConfig, expandArguments, type CustomHandlerConfig } from './config.ts'
export {
  readFunctionJsonDir,
  type FunctionJsonFunction,
  type FunctionJsonProblem,
} from './function-json.ts'
export {
  toPayloadHttpRequest,
  toPayloadInvoke,
  parsePayloadResponse,
  toHttpAnswer,
  type HandlerHttpRequest,
  type HandlerHttpAnswer,
  type PayloadRequest,
  type PayloadResponse,
} from './payload.ts'
export { createCustomHandlerClient, type CustomHandlerClient } from './client.ts'
export { startCustomHandler, waitForHandler, type CustomHandlerProcess } from './process.ts'
export { toHandlerRequest, toDispatchOutput } from './dispatch-bridge.ts'
