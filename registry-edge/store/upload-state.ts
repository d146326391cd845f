import { z } from 'zod'

/**
 * `uploads/<id>/state.json`: the session's repository, when it started and who opened it (the
 * client its per-client limit counts; absent in sessions of older edges).
 */
const uploadStateSchema = z.object({
  repository: z.string(),
  startedAt: z.number(),
  client: z.string().optional(),
})
export type UploadState = z.infer<typeof uploadStateSchema>

export function parseUploadState(text: string | undefined): UploadState | undefined {
  if (text === undefined) return undefined
  try {
    const result = uploadStateSchema.safeParse(JSON.parse(text))
    return result.success ? result.data : undefined
  } catch {
    return undefined
  }
}
