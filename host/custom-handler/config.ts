import { z } from 'zod'
import { CustomHandlerError } from './errors.ts'

/** host.json `customHandler` (DOCS functions-custom-handlers.md; HOST HttpWorkerOptions*.cs). */
export interface CustomHandlerConfig {
  /** A command (looked up on PATH) or a file, relative to workingDirectory when it exists there. */
  executable: string
  arguments: string[]
  /** Relative to the script root; default the script root. */
  workingDirectory: string | undefined
  /** Forward HTTP-in/HTTP-out invocations as the original request instead of the payload protocol. */
  enableForwardingHttpRequest: boolean
  /** A fixed port; by default a free one is chosen. */
  port: number | undefined
}

const description = z.looseObject({
  defaultExecutablePath: z.string().min(1),
  arguments: z.array(z.string()).optional(),
  workingDirectory: z.string().optional(),
})

const section = z.looseObject({
  description,
  enableForwardingHttpRequest: z.boolean().optional(),
  port: z.union([z.number().int(), z.string().regex(/^\d+$/)]).optional(),
})

const hostJsonShape = z.looseObject({
  customHandler: section.optional(),
  httpWorker: section.optional(),
})

/**
 * The custom-handler section of a parsed host.json, or undefined when the app has none (a
 * Node.js app). The deprecated `httpWorker` section is read when `customHandler` is absent.
 */
export function parseCustomHandlerConfig(hostJson: unknown): CustomHandlerConfig | undefined {
  const parsed = hostJsonShape.safeParse(hostJson)
  if (!parsed.success) {
    throw new CustomHandlerError(
      'CUSTOM_HANDLER_CONFIG_INVALID',
      `host.json customHandler: ${z.prettifyError(parsed.error)}`,
    )
  }
  const s = parsed.data.customHandler ?? parsed.data.httpWorker
  if (!s) return undefined
  return {
    executable: s.description.defaultExecutablePath,
    arguments: s.description.arguments ?? [],
    workingDirectory: s.description.workingDirectory,
    enableForwardingHttpRequest: s.enableForwardingHttpRequest ?? false,
    port: s.port === undefined ? undefined : Number(s.port),
  }
}

/** `%NAME%` in arguments is replaced by the app setting NAME (empty when unset), as the host does. */
export function expandArguments(args: string[], env: Record<string, string | undefined>): string[] {
  return args.map((a) => a.replace(/%([^%]+)%/g, (_m, name: string) => env[name] ?? ''))
}
