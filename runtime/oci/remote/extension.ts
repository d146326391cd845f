import { ThawError } from '../../errors.ts'
import type { CallOptions } from './manifests.ts'
import type { RegistryResponse } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

export interface ExtensionRequest extends CallOptions {
  method: 'GET' | 'POST'
  /** The whole path, under the repository: `/v2/<name>/_thaw/bundle/sha256:…`. */
  path: string
  headers?: Record<string, string>
  body?: Buffer
}

/**
 * A request to a registry extension of a repository (distribution-spec's `_<ns>` path
 * components, such as the edge's `/v2/<name>/_thaw/...`) with the client's credentials,
 * challenge answering, redirects and retries (a POST only when it was not sent). A GET asks for
 * pull access, a POST for pull and push. 429 and 5xx answers throw once retries are spent, like
 * every call of the client; any other status is returned, its body the caller's to read or
 * discard.
 */
export function extensionRequest(
  t: Transport,
  repository: string,
  request: ExtensionRequest,
): Promise<RegistryResponse> {
  if (!request.path.startsWith(`/v2/${repository}/_`)) {
    throw new ThawError(
      'INVALID_ARGUMENT',
      `${request.path} is not an extension path of repository ${repository}`,
    )
  }
  return t.call(
    {
      method: request.method,
      url: request.path,
      headers: request.headers,
      body: request.body,
      scopes: [repositoryScope(repository, request.method === 'GET' ? 'pull' : 'pull,push')],
      signal: request.signal,
    },
    async (res) => res,
  )
}
