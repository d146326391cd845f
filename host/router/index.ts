export { RouterError, type RouterErrorCode } from './errors.ts'
export {
  parseRouteTemplate,
  type RouteTemplate,
  type RoutePart,
  type ParameterPart,
} from './route-template.ts'
export { parseConstraint, type RouteConstraint } from './route-constraints.ts'
export { matchTemplate, type RouteParams } from './match-template.ts'
export {
  createRouteTable,
  splitPath,
  type AuthLevel,
  type HttpFunctionSpec,
  type RouteEntry,
  type RouteMatch,
  type RouteProblem,
  type RouteTable,
} from './route-table.ts'
export {
  authorize,
  generateKey,
  keyLevel,
  presentedKey,
  KEY_HEADER,
  KEY_QUERY,
  type AccessLevel,
  type AuthResult,
  type KeySet,
  type KeyedRequest,
} from './keys.ts'
export { readSecretsDir } from './secrets-dir.ts'
