import type { HostLogger } from '../log/host-logger.ts'
import type { SandboxNode } from '../sandbox/sandbox-node.ts'

/** What the warm pool needs from the sandbox (host/sandbox createSandbox). */
export interface NodePreparer {
  prepareNode(options?: { signal?: AbortSignal }): Promise<SandboxNode>
}

export interface WarmPool {
  /** A prepared node: one from the pool at once, else one prepared now. Refills in the background. */
  take(signal?: AbortSignal): Promise<SandboxNode>
  /** Nodes ready in the pool now. */
  readonly size: number
  readonly target: number
  /** Resolves when the pool holds `target` nodes (or refilling failed). For tests and `thaw up`. */
  filled(): Promise<void>
  /** Destroys the pooled nodes. Idempotent. */
  close(): Promise<void>
}

/**
 * Keeps `target` warm nodes (prepared: scratch tmpfs, netns, veth; everything that does not depend
 * on the image), so a cold start only mounts and starts. Refills one node at a time: preparing
 * is mostly kernel work (mounts, netlink), and the machine's cores belong to running nodes.
 * A failed preparation is logged and retried after a pause, not in a tight loop.
 */
export function createWarmPool(o: {
  sandbox: NodePreparer
  target: number
  logger: HostLogger
  retryMs?: number
}): WarmPool {
  const ready: SandboxNode[] = []
  const abort = new AbortController()
  let refilling: Promise<void> | undefined
  let closing: Promise<void> | undefined
  const refill = (): Promise<void> =>
    (refilling ??= (async () => {
      while (!closing && ready.length < o.target) {
        try {
          ready.push(await o.sandbox.prepareNode({ signal: abort.signal }))
        } catch (err) {
          if (closing) break
          o.logger.log('error', `preparing a warm node failed: ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, o.retryMs ?? 2000).unref())
          break
        }
      }
    })().finally(() => {
      refilling = undefined
    }))
  void refill()
  return {
    get size() {
      return ready.length
    },
    target: o.target,
    async take(signal) {
      const node = ready.shift()
      void refill()
      if (node) return node
      return o.sandbox.prepareNode({ signal })
    },
    async filled() {
      while (!closing && ready.length < o.target) await refill()
    },
    close() {
      closing ??= (async () => {
        abort.abort()
        await refilling?.catch(() => {})
        await Promise.allSettled(ready.splice(0).map((n) => n.destroy()))
      })()
      return closing
    },
  }
}
