import { readFile, writeFile } from 'node:fs/promises'

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

/**
 * Starts a new peak: VmHWM is set back to the current VmRSS (writing 5 to /proc/<pid>/clear_refs,
 * proc(5), Linux 4.0+), so a later procMemory() says the peak since now.
 */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5')
}
