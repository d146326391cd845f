import { watch, type FSWatcher } from 'node:fs'

/** Paths under the app that never trigger a reload. */
const IGNORED = /(^|[/\\])(node_modules|\.git|\.thaw|\.vscode|\.idea)([/\\]|$)|\.(log|tmp|swp)$|~$/

/**
 * Watches the app folder (recursively) and calls back once per burst of changes, after `debounceMs`
 * of quiet (func restarts on file changes after a 300-500 ms debounce, HOST FileMonitoringService).
 */
export function watchApp(
  dir: string,
  onChange: (path: string) => void,
  debounceMs = 300,
): { close(): void } {
  let timer: NodeJS.Timeout | undefined
  let last = ''
  let watcher: FSWatcher | undefined = watch(dir, { recursive: true }, (_event, file) => {
    const name = file ? String(file) : ''
    if (name && IGNORED.test(name)) return
    last = name
    clearTimeout(timer)
    timer = setTimeout(() => onChange(last), debounceMs)
  })
  watcher.on('error', () => {})
  return {
    close() {
      clearTimeout(timer)
      watcher?.close()
      watcher = undefined
    },
  }
}
