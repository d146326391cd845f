import { z } from 'zod'
import type { HostMessage, InvokeFailure, InvokeResult, WorkerMessage } from './worker-messages.ts'

/**
 * zod schemas for the control-channel messages (worker-messages.ts). The host parses every line
 * the worker writes with parseWorkerMessage: the worker runs user code and is not trusted to be
 * well-formed. The `satisfies` checks below keep these schemas and the plain types in step.
 */

const logLevel = z.enum(['trace', 'debug', 'information', 'warning', 'error', 'critical', 'none'])
const logCategory = z.enum(['user', 'system', 'customMetric'])

const functionInfo = z.object({
  name: z.string().min(1),
  trigger: z.string().min(1),
  methods: z.array(z.string()).nullable(),
  route: z.string().nullable(),
  authLevel: z.enum(['anonymous', 'function', 'admin']).nullable(),
  servable: z.boolean(),
  reason: z.string().optional(),
  bindings: z.record(z.string(), z.unknown()),
})

const errorInfo = z.object({ message: z.string(), stack: z.string().optional() })

export const workerMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    protocol: z.number().int(),
    pid: z.number().int(),
    node: z.string(),
    worker: z.string(),
  }),
  z.object({
    type: z.literal('ready'),
    listen: z.string().min(1),
    model: z.object({ name: z.string(), version: z.string() }).nullable(),
    streaming: z.boolean(),
    functions: z.array(functionInfo),
  }),
  z.object({ type: z.literal('fatal'), message: z.string(), stack: z.string().optional() }),
  z.object({
    type: z.literal('log'),
    level: logLevel,
    category: logCategory,
    message: z.string(),
    invocationId: z.string().optional(),
    functionName: z.string().optional(),
  }),
  z.object({
    type: z.literal('invocation-start'),
    invocationId: z.string(),
    functionName: z.string(),
  }),
  z.object({
    type: z.literal('invocation-end'),
    invocationId: z.string(),
    functionName: z.string(),
    outcome: z.enum(['succeeded', 'failed']),
    durationMs: z.number().nonnegative(),
    error: errorInfo.optional(),
  }),
]) satisfies z.ZodType<WorkerMessage>

export const hostMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('shutdown'), graceMs: z.number().int().nonnegative() }),
]) satisfies z.ZodType<HostMessage>

export const invokeResultSchema = z.object({
  returnValue: z.unknown(),
  outputs: z.record(z.string(), z.unknown()),
}) satisfies z.ZodType<InvokeResult>

export const invokeFailureSchema = z.object({ error: errorInfo }) satisfies z.ZodType<InvokeFailure>

/** Parses one control line from a worker; throws a ZodError (or SyntaxError) on anything else. */
export function parseWorkerMessage(line: string): WorkerMessage {
  return workerMessageSchema.parse(JSON.parse(line)) as WorkerMessage
}

export function parseHostMessage(line: string): HostMessage {
  return hostMessageSchema.parse(JSON.parse(line))
}
