import type { DeployEvent } from './deploy-app.ts'
import { formatBytes } from '../../runtime/text/format-bytes.ts'

export interface OutputStream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

/**
 * What `thaw deploy` prints while it works. On a terminal the push is one bar redrawn in place
 * (`\r`); otherwise (CI logs, pipes) one plain line per blob, so logs stay readable.
 */
export function deployReporter(out: OutputStream): (event: DeployEvent) => void {
  const tty = out.isTTY === true
  let barShown = false
  const endBar = () => {
    if (barShown) out.write('\n')
    barShown = false
  }
  return (event) => {
    switch (event.type) {
      case 'built': {
        const { source } = event
        const what =
          source.kind === 'node'
            ? `@azure/functions app${source.typescript ? ' (TypeScript, compiled)' : ''}`
            : 'custom-handler app'
        out.write(
          `Built ${source.name}: ${what}, ${source.files.length} files, app layer ${formatBytes(event.layer.size)} on ${event.base}\n`,
        )
        break
      }
      case 'push': {
        const p = event.progress
        if (tty) {
          out.write(
            `\r${bar(p.doneBytes, p.totalBytes, Math.min(40, Math.max(10, (out.columns ?? 80) - 40)))}`,
          )
          barShown = true
        } else if (p.finished) {
          out.write(
            `  ${p.finished === 'uploaded' ? 'uploaded' : 'reused  '} ${p.blob.digest.slice(0, 19)} ${formatBytes(p.blob.size)}\n`,
          )
        }
        break
      }
      case 'pushed':
        endBar()
        out.write(
          `Pushed ${event.reference}: ${event.uploaded.length} blob(s) uploaded (${formatBytes(sum(event.uploaded))}), ` +
            `${event.reused.length} reused from the registry (${formatBytes(sum(event.reused))})\n`,
        )
        break
      case 'artifact':
        out.write(`Streaming artifact: ${event.state}\n`)
        break
      case 'host':
        out.write(formatDeployed(event))
        break
    }
  }
}

/**
 * The end of a deploy, as `func azure functionapp publish` ends: the app's functions and the
 * URL of each (here by path on the host; `<app>.<domain>` works as well).
 */
export function formatDeployed(event: Extract<DeployEvent, { type: 'host' }>): string {
  const what = event.created
    ? 'created the app'
    : event.restarted
      ? 'its node started and loaded the functions; the previous revision drains'
      : 'same image and settings: the running nodes carry on'
  const lines = [
    `Revision ${event.revision} of ${event.app} is live (${what})`,
    `Functions in ${event.app}:`,
  ]
  for (const f of event.functions) {
    lines.push(`    ${f.name} - [httpTrigger]`, `        Invoke url: ${f.url}`)
  }
  if (event.functions.length === 0)
    lines.push('    (none listed: no node has loaded this revision yet)')
  return `${lines.join('\n')}\n`
}

function bar(done: number, total: number, width: number): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 1
  const filled = Math.round(ratio * width)
  return `Pushing [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(ratio * 100)).padStart(3)}% ${formatBytes(done)} / ${formatBytes(total)}   `
}

function sum(blobs: Array<{ size: number }>): number {
  return blobs.reduce((n, b) => n + b.size, 0)
}

export { formatBytes }
