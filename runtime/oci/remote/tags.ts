import { z } from 'zod'
import { OciError } from '../errors.ts'
import { parseRepositoryName } from '../reference.ts'
import { nextLink } from './link-header.ts'
import type { CallOptions } from './manifests.ts'
import { expectStatus } from './response-error.ts'
import { readBody } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Listing Tags" (end-8a, end-8b); distribution's catalog API.

export interface PageOptions extends CallOptions {
  /** Page size to ask for (`n`). The registry may send fewer per page. */
  n?: number
  /** Start after this entry (`last`). */
  last?: string
}

const tagListSchema = z.looseObject({ name: z.string(), tags: z.array(z.string()).nullish() })
const catalogSchema = z.looseObject({ repositories: z.array(z.string()).nullish() })
const MAX_PAGES = 10_000
const MAX_PAGE_BYTES = 16 * 1024 * 1024

/** Every tag of a repository, following `Link: <…>; rel="next"` pages to the end. */
export async function listTags(
  t: Transport,
  repository: string,
  options: PageOptions = {},
): Promise<string[]> {
  parseRepositoryName(repository)
  const scopes = [repositoryScope(repository, 'pull')]
  return paginate(t, `/v2/${repository}/tags/list`, scopes, options, (json) => {
    const parsed = tagListSchema.safeParse(json)
    if (!parsed.success)
      throw new OciError('UNKNOWN', `tag list of ${repository} is malformed`, { status: 502 })
    return parsed.data.tags ?? []
  })
}

/** Every repository the registry lists (`/v2/_catalog`), following pages. */
export async function catalog(t: Transport, options: PageOptions = {}): Promise<string[]> {
  return paginate(t, '/v2/_catalog', ['registry:catalog:*'], options, (json) => {
    const parsed = catalogSchema.safeParse(json)
    if (!parsed.success) throw new OciError('UNKNOWN', 'catalog is malformed', { status: 502 })
    return parsed.data.repositories ?? []
  })
}

async function paginate(
  t: Transport,
  path: string,
  scopes: string[],
  options: PageOptions,
  entries: (json: unknown) => string[],
): Promise<string[]> {
  const out: string[] = []
  let url: URL | undefined = new URL(path, t.registry)
  if (options.n !== undefined) url.searchParams.set('n', String(options.n))
  if (options.last !== undefined) url.searchParams.set('last', options.last)
  const seen = new Set<string>()
  for (let page = 0; url && page < MAX_PAGES; page++) {
    seen.add(url.href)
    const current: URL = url
    const result = await t.call(
      { method: 'GET', url: current, scopes, signal: options.signal },
      async (res) => {
        await expectStatus(res, [200], `GET ${current.pathname}`, { 404: 'NAME_UNKNOWN' })
        const body = await readBody(res, MAX_PAGE_BYTES, current.pathname)
        let json: unknown
        try {
          json = JSON.parse(body.toString('utf8'))
        } catch {
          throw new OciError('UNKNOWN', `${current.pathname} answered something that is not JSON`, {
            status: 502,
          })
        }
        return { items: entries(json), next: nextLink(res.header('link'), res.url) }
      },
    )
    out.push(...result.items)
    // A registry that links a page to itself would loop forever.
    url = result.next && !seen.has(result.next.href) ? result.next : undefined
  }
  return out
}
