import { Agent, fetch as undiciFetch } from 'undici'
import { onCleanup } from './cleanup.ts'

/**
 * `fetch` whose connections leave from `localAddress`, e.g. '127.0.0.2': every 127.0.0.0/8
 * address reaches the loopback interface on Linux, so a test can be several clients to a server
 * that tells clients apart by address (per-client limits). The agent is closed when the test
 * file ends.
 */
export function fetchFrom(localAddress: string): typeof fetch {
  const agent = new Agent({ localAddress })
  onCleanup('servers', () => agent.close())
  return ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch
}
