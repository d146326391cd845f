import { isDigest, type Digest } from './digest.ts'
import { OciError } from './errors.ts'

/**
 * Repository names and image references.
 * Name grammar: distribution-spec "Pulling manifests":
 *   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * Tag grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
const MAX_NAME = 255
// distribution/reference's domain grammar: DNS labels or a bracketed IPv6 address, optional port.
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]{1,5})?$/

export function isRepositoryName(value: string): boolean {
  return value.length <= MAX_NAME && NAME.test(value)
}

export function parseRepositoryName(value: string): string {
  if (isRepositoryName(value)) return value
  throw new OciError(
    'NAME_INVALID',
    `invalid repository name ${JSON.stringify(value.slice(0, 300))}`,
  )
}

export function isTag(value: string): boolean {
  return TAG.test(value)
}

/** A manifest reference inside a repository: a tag or a digest. */
export type ManifestRef = { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined }

export function parseManifestRef(value: string): ManifestRef {
  if (value.includes(':')) {
    if (isDigest(value)) return { digest: value }
    throw new OciError('DIGEST_INVALID', `invalid digest ${JSON.stringify(value.slice(0, 100))}`)
  }
  if (isTag(value)) return { tag: value }
  throw new OciError('TAG_INVALID', `invalid tag ${JSON.stringify(value.slice(0, 200))}`)
}

/**
 * A full image reference: `[registry/]repository[:tag][@digest]`, as users type it
 * (`localhost:5000/apps/hello:v1`, `apps/hello@sha256:…`).
 * `registry` is undefined when the reference names none; callers supply their default.
 */
export interface ImageReference {
  registry: string | undefined
  repository: string
  tag: string | undefined
  digest: Digest | undefined
}

export function parseImageReference(input: string): ImageReference {
  let rest = input.trim()
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    const d = rest.slice(at + 1)
    if (!isDigest(d)) throw new OciError('DIGEST_INVALID', `invalid digest in reference ${input}`)
    digest = d
    rest = rest.slice(0, at)
  }
  let registry: string | undefined
  const slash = rest.indexOf('/')
  if (slash > 0) {
    const first = rest.slice(0, slash)
    // The first component is a registry host when it looks like one (docker's rule).
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!HOST.test(first)) {
        throw new OciError(
          'NAME_INVALID',
          `invalid registry host ${JSON.stringify(first)} in reference`,
        )
      }
      registry = first
      rest = rest.slice(slash + 1)
    }
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!isTag(tag)) {
      throw new OciError('TAG_INVALID', `invalid tag ${JSON.stringify(tag)} in reference ${input}`)
    }
  }
  if (!isRepositoryName(rest)) {
    throw new OciError(
      'NAME_INVALID',
      `invalid repository name in reference ${JSON.stringify(input)}`,
    )
  }
  if (!tag && !digest) tag = 'latest'
  return { registry, repository: rest, tag, digest }
}

export function formatImageReference(ref: ImageReference): string {
  let out = ref.registry ? `${ref.registry}/${ref.repository}` : ref.repository
  if (ref.tag) out += `:${ref.tag}`
  if (ref.digest) out += `@${ref.digest}`
  return out
}
