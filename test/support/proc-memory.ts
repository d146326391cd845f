import { readFile } from 'node:fs/promises'

/** A process's resident memory in bytes, from /proc/<pid>/status (Linux, proc(5)). */
export interface ProcMemory {
  /** VmRSS: resident now. */
  rss: number
  /** VmHWM: the peak of VmRSS since the process started (its "high water mark"). */
  peakRss: number
}

export async function procMemory(pid: number): Promise<ProcMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string): number => {
    const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm'))
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`)
    return Number(m[1]) * 1024
  }
  return { rss: kib('VmRSS'), peakRss: kib('VmHWM') }
}
