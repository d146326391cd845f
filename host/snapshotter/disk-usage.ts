import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Bytes (allocated blocks) and inodes under `dir`, hard links counted once: what containerd's
 * overlay snapshotter reports as a snapshot's usage (continuity fs.DiskUsage).
 */
export async function diskUsage(dir: string): Promise<{ size: number; inodes: number }> {
  const seen = new Set<string>()
  let size = 0
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path)
    const id = `${st.dev}:${st.ino}`
    if (seen.has(id)) return
    seen.add(id)
    size += st.blocks * 512
    if (!st.isDirectory()) return
    for (const name of await readdir(path)) await walk(join(path, name))
  }
  await walk(dir)
  return { size, inodes: seen.size }
}
