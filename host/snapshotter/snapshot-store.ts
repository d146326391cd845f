import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { SnapshotError } from './snapshot-error.ts'

export type SnapshotKind = 'view' | 'active' | 'committed'

/** One snapshot as the snapshotter keeps it (containerd's snapshots.Info plus where it lives). */
export interface SnapshotRecord {
  /** The folder under `<root>/snapshots/`; stays when an active snapshot is committed. */
  id: string
  name: string
  /** '' for none. */
  parent: string
  kind: SnapshotKind
  labels: Record<string, string>
  createdAt: string
  updatedAt: string
  /** Bytes and inodes of a committed snapshot's own folder, measured at commit. */
  usage?: { size: number; inodes: number }
  /**
   * A layer of an image served lazily: `lazy` is the image's top layer, whose contents are the
   * whole merged image (the FUSE mount of `reference`); the layers under it are empty.
   */
  remote?: { reference: string; manifest: string; lazy: boolean }
}

const recordSchema = z.object({
  id: z.string().regex(/^\d+$/),
  name: z.string().min(1),
  parent: z.string(),
  kind: z.enum(['view', 'active', 'committed']),
  labels: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  usage: z.object({ size: z.number(), inodes: z.number() }).optional(),
  remote: z.object({ reference: z.string(), manifest: z.string(), lazy: z.boolean() }).optional(),
})
const fileSchema = z.object({
  version: z.literal(1),
  nextId: z.number().int().nonnegative(),
  snapshots: z.array(recordSchema),
})

/**
 * The snapshotter's metadata: every snapshot by name, in one JSON file rewritten whole on each
 * change (written to a temporary file, fsync'ed, renamed over the old one, the folder fsync'ed),
 * so a crash leaves the old state or the new one, never half of either. A node holds a few
 * hundred snapshots, so the whole file is small. Callers serialize changes (Snapshotter's lock).
 */
export class SnapshotStore {
  readonly #file: string
  readonly #records: Map<string, SnapshotRecord>
  #nextId: number

  private constructor(file: string, records: SnapshotRecord[], nextId: number) {
    this.#file = file
    this.#records = new Map(records.map((r) => [r.name, r]))
    this.#nextId = nextId
  }

  static async open(root: string): Promise<SnapshotStore> {
    await mkdir(root, { recursive: true })
    const file = join(root, 'metadata.json')
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (text === undefined) return new SnapshotStore(file, [], 1)
    let parsed
    try {
      parsed = fileSchema.parse(JSON.parse(text))
    } catch (err) {
      throw new SnapshotError('INTERNAL', `${file} is not a thaw snapshotter metadata file`, err)
    }
    return new SnapshotStore(file, parsed.snapshots, parsed.nextId)
  }

  get(name: string): SnapshotRecord | undefined {
    return this.#records.get(name)
  }

  all(): SnapshotRecord[] {
    return [...this.#records.values()]
  }

  children(name: string): SnapshotRecord[] {
    return this.all().filter((r) => r.parent === name)
  }

  newId(): string {
    return String(this.#nextId++)
  }

  /** Applies `change` to the records and persists them; on a write error nothing changes. */
  async update(change: (records: Map<string, SnapshotRecord>) => void): Promise<void> {
    const next = new Map([...this.#records].map(([k, v]) => [k, structuredClone(v)]))
    change(next)
    await this.#write(next)
    this.#records.clear()
    for (const [k, v] of next) this.#records.set(k, v)
  }

  async #write(records: Map<string, SnapshotRecord>): Promise<void> {
    const body = JSON.stringify({
      version: 1,
      nextId: this.#nextId,
      snapshots: [...records.values()],
    })
    const tmp = `${this.#file}.tmp`
    const handle = await open(tmp, 'w', 0o600)
    try {
      await handle.writeFile(body)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, this.#file)
    const dir = await open(join(this.#file, '..'), 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  }
}
