import type { RunnerEvent } from './generation.ts'

/**
 * Renders runner events as func start prints them (CT transcripts; StartHostAction):
 *   [2024-05-07T19:57:56.800Z] Executing 'Functions.hello' (Reason='…', Id=<uuid>)
 *   [2024-05-07T19:57:56.805Z] Executed 'Functions.hello' (Succeeded, Id=<uuid>, Duration=5ms)
 * User logs and the app's own output always; system logs at warning and above, or all with
 * `verbose`. Returns the lines to print (possibly none).
 */
export function formatEvent(
  event: RunnerEvent,
  options: { verbose?: boolean; now?: Date } = {},
): string[] {
  const ts = `[${(options.now ?? new Date()).toISOString()}]`
  const line = (text: string) => text.split('\n').map((l) => `${ts} ${l}`)
  switch (event.type) {
    case 'invocation-start':
      return line(
        `Executing 'Functions.${event.functionName}' (Reason='This function was programmatically called via the host APIs.', Id=${event.invocationId})`,
      )
    case 'invocation-end': {
      const ms = Math.round(event.durationMs)
      const outcome = event.outcome === 'succeeded' ? 'Succeeded' : 'Failed'
      const out = line(
        `Executed 'Functions.${event.functionName}' (${outcome}, Id=${event.invocationId}, Duration=${ms}ms)`,
      )
      if (event.error) {
        out.push(
          ...line(
            `Exception while executing function: Functions.${event.functionName}. Result: Failure\nException: ${event.error.message}${event.error.stack ? `\nStack: ${event.error.stack}` : ''}`,
          ),
        )
      }
      return out
    }
    case 'log':
      if (event.category !== 'user' && !options.verbose && !isSevere(event.level)) return []
      return line(event.message)
    case 'output':
      return line(event.line)
    case 'generation-ready':
      return event.reload
        ? line('Host restarted: the new code is serving.')
        : line('Worker process started and initialized.')
    case 'generation-failed':
      return line(
        event.reload
          ? `Reload failed, the previous code keeps serving:\n${event.message}`
          : `Worker failed to start:\n${event.message}`,
      )
    case 'generation-exited':
      return line(`Worker process exited unexpectedly (code ${event.code}); restarting.`)
    case 'reload':
      return options.verbose
        ? line(`File change detected (${event.reason}); restarting the worker.`)
        : []
    case 'note':
      return event.level === 'information' && !options.verbose ? [] : line(event.message)
  }
}

function isSevere(level: string): boolean {
  return level === 'warning' || level === 'error' || level === 'critical'
}
