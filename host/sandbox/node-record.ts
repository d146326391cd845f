import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'

/**
 * `<node dir>/node.json`: what a host needs to take over a node a host that died left running
 * (sandbox.ts `keepNodes`), or to remove it. Written whole by rename, first when the node is
 * prepared (its index and /30), again when it runs (its process, shim and cgroups, and what its
 * owner, the pool, needs: `owner`, opaque here).
 */
export interface NodeRecord {
  version: 1
  /** The node's number in its instance (`n<index in base 36>`, `thaw-<instance>-<index…>`). */
  index: number
  lease: { index: number; hostIp: string; nodeIp: string; prefixLength: 30 }
  /** Host ids of its user namespace's range, when it was given one. */
  range?: { hostId: number; size: number }
  /** ISO time it was prepared. */
  created: string
  container?: {
    /** Host PID of its first process. */
    pid: number
    shim: { pid: number; startTime: string }
    cgroups: { version: 1 | 2; memory?: string; pids?: string }
    /** Whether it runs in its own user namespace (informational). */
    userNamespace: boolean
  }
  owner?: unknown
}

const nodeRecordSchema = z
  .object({
    version: z.literal(1),
    index: z.number().int().min(0),
    lease: z.object({
      index: z.number().int().min(0),
      hostIp: z.string(),
      nodeIp: z.string(),
      prefixLength: z.literal(30),
    }),
    range: z.object({ hostId: z.number().int(), size: z.number().int() }).optional(),
    created: z.string(),
    container: z
      .object({
        pid: z.number().int().positive(),
        shim: z.object({ pid: z.number().int().positive(), startTime: z.string() }),
        cgroups: z.object({
          version: z.union([z.literal(1), z.literal(2)]),
          memory: z.string().optional(),
          pids: z.string().optional(),
        }),
        userNamespace: z.boolean(),
      })
      .optional(),
    owner: z.unknown().optional(),
  })
  .strict()

export const NODE_RECORD_FILE = 'node.json'

export async function writeNodeRecord(dir: string, record: NodeRecord): Promise<void> {
  const tmp = join(dir, `.${NODE_RECORD_FILE}.tmp`)
  await writeFile(tmp, JSON.stringify(record), { mode: 0o600 })
  await rename(tmp, join(dir, NODE_RECORD_FILE))
}

/** The node's record; throws when it is missing or not one (a node half made, a foreign file). */
export async function readNodeRecord(dir: string): Promise<NodeRecord> {
  const text = await readFile(join(dir, NODE_RECORD_FILE), 'utf8')
  return nodeRecordSchema.parse(JSON.parse(text)) as NodeRecord
}
