import { z } from 'zod'
import { isDigest, type Digest } from './digest.ts'
import { OciError } from './errors.ts'
import { MediaType, isIndexMediaType, isManifestMediaType } from './media-types.ts'

/**
 * zod schemas for the OCI JSON documents thaw reads from the outside (image-spec v1.1:
 * descriptor.md, manifest.md, image-index.md, config.md), and one `parseX(bytes)` per document.
 * Unknown fields are kept (`looseObject`): a registry must not drop what it does not know.
 */

const digest = z
  .string()
  .refine(isDigest, 'must be sha256:<64 lowercase hex>') as unknown as z.ZodType<Digest>
const annotations = z.record(z.string(), z.string())

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
})
export type Platform = z.infer<typeof platformSchema>

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: annotations.optional(),
  data: z.string().optional(),
  artifactType: z.string().optional(),
  platform: platformSchema.optional(),
})
export type Descriptor = z.infer<typeof descriptorSchema>

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum([MediaType.ociManifest, MediaType.dockerManifest]).optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotations.optional(),
})
export type ImageManifest = z.infer<typeof imageManifestSchema>

export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum([MediaType.ociIndex, MediaType.dockerManifestList]).optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotations.optional(),
})
export type ImageIndex = z.infer<typeof imageIndexSchema>

export const imageConfigSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  created: z.string().optional(),
  author: z.string().optional(),
  config: z
    .looseObject({
      User: z.string().optional(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      WorkingDir: z.string().optional(),
      ExposedPorts: z.record(z.string(), z.object({})).nullish(),
      Labels: z.record(z.string(), z.string()).nullish(),
      StopSignal: z.string().optional(),
    })
    .optional(),
  rootfs: z.looseObject({
    type: z.literal('layers'),
    diff_ids: z.array(digest),
  }),
  history: z.array(z.looseObject({})).optional(),
})
export type ImageConfig = z.infer<typeof imageConfigSchema>

/** A parsed manifest of either kind, tagged with its resolved media type. */
export type ParsedManifest =
  | { kind: 'image'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; manifest: ImageIndex }

/** The largest manifest thaw accepts (distribution-spec: registries SHOULD accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * Parses manifest bytes. The media type comes from the document's `mediaType` field, else from
 * the HTTP Content-Type it arrived with; the two must agree when both are present.
 * Throws `MANIFEST_INVALID` with the reason.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new OciError('MANIFEST_INVALID', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, {
      status: 413,
    })
  }
  const json = parseJson(bytes, 'MANIFEST_INVALID', 'manifest')
  const declared =
    typeof (json as { mediaType?: unknown })?.mediaType === 'string'
      ? (json as { mediaType: string }).mediaType
      : undefined
  const header = contentType?.split(';')[0]?.trim()
  if (declared && header && isManifestMediaType(header) && declared !== header) {
    throw new OciError(
      'MANIFEST_INVALID',
      `mediaType ${declared} does not match Content-Type ${header}`,
    )
  }
  const mediaType =
    declared ?? (header && isManifestMediaType(header) ? header : undefined) ?? guessMediaType(json)
  if (!mediaType || !isManifestMediaType(mediaType)) {
    throw new OciError(
      'MANIFEST_INVALID',
      `unsupported manifest media type ${mediaType ?? '(none)'}`,
    )
  }
  if (isIndexMediaType(mediaType)) {
    return { kind: 'index', mediaType, manifest: check(imageIndexSchema, json, 'MANIFEST_INVALID') }
  }
  return {
    kind: 'image',
    mediaType,
    manifest: check(imageManifestSchema, json, 'MANIFEST_INVALID'),
  }
}

export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  return check(
    imageConfigSchema,
    parseJson(bytes, 'MANIFEST_INVALID', 'image config'),
    'MANIFEST_INVALID',
  )
}

function guessMediaType(json: unknown): string | undefined {
  if (json && typeof json === 'object') {
    if ('manifests' in json) return MediaType.ociIndex
    if ('config' in json && 'layers' in json) return MediaType.ociManifest
  }
  return undefined
}

function parseJson(bytes: Uint8Array, code: 'MANIFEST_INVALID', what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (err) {
    throw new OciError(code, `${what} is not valid JSON: ${(err as Error).message}`)
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, code: 'MANIFEST_INVALID'): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const where = issue?.path.length ? issue.path.join('.') : '(root)'
    throw new OciError(code, `invalid ${where}: ${issue?.message ?? 'does not match the schema'}`, {
      detail: result.error.issues.slice(0, 5),
    })
  }
  return result.data
}
