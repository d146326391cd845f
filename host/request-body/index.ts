export {
  BodySettings,
  DEFAULT_BODY_MIN_RATE,
  DEFAULT_BODY_TIMEOUT_MS,
  defaultBodyLimit,
  parseBodyLimits,
  type ParsedBodyLimits,
  type RequestBodyLimits,
} from './body-limits.ts'
export { closeAfterAnswerIfUnread, meterBody, type MeteredBody } from './body-meter.ts'
export {
  acceptBody,
  bodyTimedOut,
  bodyTooLarge,
  checkDeclaredLength,
  isBodyRefusal,
  refuseBody,
  type BodyRefusal,
  type BodyRefusalCode,
} from './body-refusal.ts'
export {
  answerFromReadable,
  isAnswerCut,
  readAnswer,
  relayAnswer,
  type AnswerCut,
  type AnswerCutCode,
  type AnswerSink,
  type AnswerSource,
} from './answer-relay.ts'
export { ClientClock, type ClientPaceLimits, type ClientTooSlow } from './client-clock.ts'
