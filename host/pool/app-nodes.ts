import { ThawError } from '../../runtime/errors.ts'
import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import type { AppLimits } from '../apps/app-spec.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { HttpFunctionSpec } from '../router/index.ts'
import type { WorkerClient } from '../worker/worker-client.ts'
import type { Fetched } from '../mount/image-mounts.ts'
import type { ColdStartTimings } from './cold-start.ts'
import { NodeStateMachine, type PoolNodeState } from './node-state.ts'

/** A node that finished its cold start: what the app's scheduler needs of it. */
export interface StartedNode {
  readonly id: string
  readonly client: WorkerClient
  readonly functions: HttpFunctionSpec[]
  /** Every function the app registered, HTTP or not (timers, admin invoke). */
  readonly allFunctions: FunctionInfo[]
  readonly routePrefix: string
  /** host.json extensions.http.customHeaders of the image. */
  readonly customHeaders: Record<string, string>
  /** The cold start's phases except `first` and `total`. */
  readonly timings: Omit<ColdStartTimings, 'first' | 'total'>
  /** Image data fetched from the edge since the cold start's acquire (MountLease.fetched). */
  fetched(): Fetched
  /** Resolves when the node's process is gone, with why (sandbox/node-handle.ts NodeExit). */
  readonly exited: Promise<{ message: string; reason?: string; oomKills?: number }>
  /** At the node's first response (record/replay hooks in). */
  firstResponse(): void
  /** Kills and removes everything of the node. Idempotent. */
  destroy(): Promise<void>
}

/** Starts a node for the app (warm node → specialized → app ready). */
/** Starts a node; `fn` names the function whose request made the cold start, when it is known. */
export type NodeStarter = (id: string, signal: AbortSignal, fn?: string) => Promise<StartedNode>

export interface PoolNode {
  readonly id: string
  readonly machine: NodeStateMachine
  started?: StartedNode
  inflight: number
  /** Invocation ids of the requests in flight (those that die with the node are logged). */
  readonly invocations: Set<string>
  served: number
  /** When the node was asked for (cold starts count from here). */
  readonly requestedAt: number
  /** Started ahead of any request (a rollout's health gate): its first request is not cold. */
  prestarted?: boolean
}

/** One dispatch slot on a ready node; release() exactly once. */
export interface NodeSlot {
  node: PoolNode
  started: StartedNode
  /** The invocation the slot was taken for, if the caller named one. */
  invocationId: string | undefined
  /** This is the node's first request (record/replay stops at its answer). */
  first: boolean
  /** It is the first and it waited for the node's start: its answer carries the cold start's breakdown. */
  cold: boolean
  release(): void
}

export interface AppNodesStatus {
  nodes: { id: string; state: PoolNodeState; inflight: number; served: number }[]
  waiting: number
  /** Set while starts fail: how many in a row, the last error, when the next may be tried. */
  startFailures?: { count: number; lastError: string; retryAt: string }
}

/** Backoff of failing starts: `baseMs` after the first failure, doubling, at most `maxMs`. */
export interface StartBackoff {
  baseMs: number
  maxMs: number
}

export const DEFAULT_START_BACKOFF: StartBackoff = { baseMs: 1000, maxMs: 60_000 }

/**
 * An app that cannot start: APP_START_FAILED for the requests that waited on the start that
 * failed, APP_START_BACKOFF for those refused while the host waits before trying again. The
 * message is the host's (internal: for the log and master-key callers), `retryAfterMs` when to
 * come back.
 */
export class AppStartError extends ThawError {
  constructor(
    code: 'APP_START_FAILED' | 'APP_START_BACKOFF',
    message: string,
    readonly retryAfterMs: number,
    cause?: unknown,
  ) {
    super(code, message, { cause })
  }
}

interface Waiter {
  invocationId: string | undefined
  signal: AbortSignal | undefined
  resolve: (slot: NodeSlot) => void
  reject: (err: unknown) => void
}

/**
 * The nodes of one app and the requests waiting for them. `acquire` hands out a slot on a
 * ready node with room (fewest in flight first); if none, the request waits in a bounded queue
 * (full → APP_BUSY, 429) and a node is started when the nodes starting cannot absorb the queue,
 * up to `maxNodes`. A node whose process dies is failed and removed; its in-flight requests fail
 * on their own connection (5xx), waiting ones get a replacement. A node idle for `idleTimeoutMs`
 * drains and is recycled (scale to zero).
 */
export class AppNodes {
  readonly #nodes = new Set<PoolNode>()
  readonly #waiters: Waiter[] = []
  readonly #idle = new Map<PoolNode, NodeJS.Timeout>()
  /** Nodes still starting: settles once the start is over (ready, or failed). */
  readonly #starting = new Map<PoolNode, Promise<unknown>>()
  readonly #abort = new AbortController()
  #counter = 0
  #closed = false
  /** Starts that failed in a row, the last one's error, and when a start may be tried again. */
  #failures = 0
  #lastError = ''
  #retryAt = 0
  /** Routes of the running image, known once one node was ready. */
  routes: Pick<StartedNode, 'functions' | 'routePrefix' | 'customHeaders'> | undefined

  constructor(
    readonly name: string,
    private readonly o: {
      limits: () => AppLimits
      start: NodeStarter
      logger: HostLogger
      onState?: (node: PoolNode, from: PoolNodeState, to: PoolNodeState) => void
      backoff?: StartBackoff
    },
  ) {}

  /**
   * A slot for one request; `invocationId` names it in the log if its node dies under it, `fn`
   * the function it is for (known once the app's routes are), so a cold start it makes records
   * and replays that function's profile.
   */
  acquire(signal?: AbortSignal, invocationId?: string, fn?: string): Promise<NodeSlot> {
    if (this.#closed)
      return Promise.reject(new ThawError('APP_GONE', `app ${this.name} was removed or changed`))
    const node = this.#pick()
    if (node) return Promise.resolve(this.#slot(node, invocationId))
    // Starts fail: nothing is tried again per request until the backoff has passed.
    const wait = this.#retryAt - Date.now()
    if (wait > 0 && !this.#live()) {
      const message = `app ${this.name} could not start (${this.#failures} times in a row), next try in ${Math.ceil(wait / 1000)} s: ${this.#lastError}`
      return Promise.reject(new AppStartError('APP_START_BACKOFF', message, wait))
    }
    const limits = this.o.limits()
    if (this.#waiters.length >= limits.maxQueue) {
      return Promise.reject(
        new ThawError('APP_BUSY', `app ${this.name} has ${this.#waiters.length} requests waiting`, {
          fault: 'user',
        }),
      )
    }
    return new Promise<NodeSlot>((resolve, reject) => {
      const waiter: Waiter = {
        invocationId,
        signal,
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(s)
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter)
        if (i >= 0) this.#waiters.splice(i, 1)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(waiter)
      this.#scale(fn)
    })
  }

  status(): AppNodesStatus {
    return {
      nodes: [...this.#nodes].map((n) => ({
        id: n.id,
        state: n.machine.state,
        inflight: n.inflight,
        served: n.served,
      })),
      waiting: this.#waiters.length,
      ...(this.#failures > 0 && {
        startFailures: {
          count: this.#failures,
          lastError: this.#lastError,
          retryAt: new Date(this.#retryAt).toISOString(),
        },
      }),
    }
  }

  /**
   * Starts one node now, with nobody waiting (a rollout's health gate): resolves when it is
   * ready (it then serves like any other), rejects with the start's error.
   */
  startOne(): Promise<StartedNode> {
    if (this.#closed)
      return Promise.reject(new ThawError('APP_GONE', `app ${this.name} was removed or changed`))
    return this.#startNode(undefined, true)
  }

  /**
   * Starts one node as startOne does unless a node is ready or starting, or starts are backing
   * off (the host's trigger sync: any node of the app tells the host its functions). Takes no
   * slot, so the node's first request is still its first (record/replay stops at its answer).
   * Resolves with the node started, or undefined when none was.
   */
  async prestart(): Promise<StartedNode | undefined> {
    if (this.#closed || this.#live() || Date.now() < this.#retryAt) return undefined
    return this.startOne()
  }

  /**
   * A node that runs already (adopted from a host that died: pool.ts adopt) joins as ready. Its
   * first request is not a cold start; later nodes get ids after its.
   */
  adopt(started: StartedNode): void {
    const n = Number(/-(\d+)$/.exec(started.id)?.[1] ?? -1)
    this.#counter = Math.max(this.#counter, n + 1)
    const node = this.#newNode(started.id, true)
    this.#started(node, started)
  }

  /**
   * Drains every node (recycled once idle). What waits is handed to `next` (the nodes of the
   * app's new revision), or refused when the app is gone. Idempotent.
   */
  async close(next?: AppNodes): Promise<void> {
    this.#closed = true
    const gone = new ThawError('APP_GONE', `app ${this.name} was removed or changed`)
    this.#abort.abort(gone)
    for (const w of this.#waiters.splice(0)) {
      if (next) next.acquire(w.signal, w.invocationId).then(w.resolve, w.reject)
      else w.reject(gone)
    }
    await Promise.allSettled([...this.#nodes].map((n) => this.#drain(n)))
  }

  /**
   * Drains every node at once: scale to zero now (admin API, tests). A node still starting is
   * drained once it is ready (after taking what waits for it), and this waits for that: when it
   * resolves, every node that ran or started before the call is draining or gone. (It skipped
   * them: a node the trigger sync had started for a new app kept starting, and served next.)
   */
  async drainAll(): Promise<void> {
    await Promise.allSettled(
      [...this.#nodes].map(async (n) => {
        await this.#starting.get(n)
        await this.#drain(n)
      }),
    )
  }

  #pick(): PoolNode | undefined {
    const limit = this.o.limits().concurrency
    let best: PoolNode | undefined
    for (const n of this.#nodes) {
      if (n.machine.state !== 'ready' || n.inflight >= limit) continue
      if (!best || n.inflight < best.inflight) best = n
    }
    return best
  }

  #slot(node: PoolNode, invocationId: string | undefined): NodeSlot {
    node.inflight++
    if (invocationId !== undefined) node.invocations.add(invocationId)
    const first = node.served++ === 0
    const timer = this.#idle.get(node)
    if (timer) clearTimeout(timer)
    this.#idle.delete(node)
    let released = false
    return {
      node,
      started: node.started!,
      invocationId,
      first,
      cold: first && !node.prestarted,
      release: () => {
        if (released) return
        released = true
        node.inflight--
        if (invocationId !== undefined) node.invocations.delete(invocationId)
        this.#afterRelease(node)
      },
    }
  }

  #afterRelease(node: PoolNode) {
    if (node.machine.state === 'draining' && node.inflight === 0) return void this.#recycle(node)
    if (node.machine.state !== 'ready') return
    this.#serveWaiters()
    if (node.inflight === 0) {
      const t = setTimeout(() => void this.#drain(node), this.o.limits().idleTimeoutMs)
      t.unref()
      this.#idle.set(node, t)
    }
  }

  #serveWaiters() {
    while (this.#waiters.length > 0) {
      const node = this.#pick()
      if (!node) break
      const waiter = this.#waiters.shift()!
      waiter.resolve(this.#slot(node, waiter.invocationId))
    }
  }

  /** Starts nodes while the queue is longer than what the starting nodes will absorb. */
  #scale(fn?: string) {
    const limits = this.o.limits()
    for (;;) {
      if (Date.now() < this.#retryAt) return // backing off: what waits is served by live nodes
      const live = [...this.#nodes].filter(
        (n) => n.machine.state === 'specializing' || n.machine.state === 'ready',
      )
      const starting = live.filter((n) => n.machine.state === 'specializing').length
      if (this.#waiters.length <= starting * limits.concurrency) return
      if (live.length >= limits.maxNodes) return
      this.#startNode(fn).catch(() => {}) // #startFailed has dealt with it
    }
  }

  #live(): boolean {
    return [...this.#nodes].some(
      (n) => n.machine.state === 'specializing' || n.machine.state === 'ready',
    )
  }

  #newNode(id: string, prestarted: boolean): PoolNode {
    const node: PoolNode = {
      id,
      machine: new NodeStateMachine(id),
      inflight: 0,
      invocations: new Set(),
      served: 0,
      requestedAt: performance.now(),
      prestarted,
    }
    node.machine.onChange((from, to) => this.o.onState?.(node, from, to))
    this.#nodes.add(node)
    node.machine.transition('specializing')
    return node
  }

  #startNode(fn?: string, prestarted = false): Promise<StartedNode> {
    const id = `${this.name}-${this.#counter++}`
    const node = this.#newNode(id, prestarted)
    const limits = this.o.limits()
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(limits.startTimeoutMs)])
    const start = this.o.start(id, signal, fn).then(
      (started) => {
        this.#started(node, started)
        return started
      },
      (err: unknown) => {
        throw this.#startFailed(node, err)
      },
    )
    const over = start.then(
      () => {},
      () => {},
    )
    this.#starting.set(node, over)
    void over.then(() => this.#starting.delete(node))
    return start
  }

  #started(node: PoolNode, started: StartedNode) {
    node.started = started
    this.#failures = 0
    this.#retryAt = 0
    if (this.#closed) {
      node.machine.transition('recycled')
      this.#nodes.delete(node)
      void started.destroy()
      return
    }
    node.machine.transition('ready')
    this.routes ??= {
      functions: started.functions,
      routePrefix: started.routePrefix,
      customHeaders: started.customHeaders,
    }
    void started.exited.then((exit) => this.#exited(node, exit))
    this.#serveWaiters()
    if (node.inflight === 0) this.#afterRelease(node) // nobody waited: arm the idle timer
  }

  /** Counts the failure, backs off (exponential, capped), and returns the error for what waited. */
  #startFailed(node: PoolNode, err: unknown): AppStartError {
    node.machine.transition(this.#closed ? 'recycled' : 'failed')
    this.#nodes.delete(node)
    const backoff = this.o.backoff ?? DEFAULT_START_BACKOFF
    const delay = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(this.#failures, 30))
    this.#failures++
    this.#lastError = (err as Error).message
    this.#retryAt = Date.now() + delay
    this.o.logger.log('error', `node start failed: ${this.#lastError}`, {
      app: this.name,
      node: node.id,
      failures: this.#failures,
      retryInMs: delay,
    })
    const error = new AppStartError(
      'APP_START_FAILED',
      `app ${this.name} could not start: ${this.#lastError}`,
      delay,
      err,
    )
    // Without any node alive or starting, the waiting requests would wait for nothing.
    if (!this.#live()) for (const w of this.#waiters.splice(0)) w.reject(error)
    return error
  }

  /**
   * The node's process is gone by itself: only what ran on it fails (its requests in flight, on
   * their own connections); waiting requests get a replacement. The log says why it died (the
   * OOM killer, a signal, an exit status) and which invocations died with it.
   */
  #exited(node: PoolNode, exit: Awaited<StartedNode['exited']>) {
    const state = node.machine.state
    if (state === 'recycled' || state === 'failed') return
    node.machine.transition('failed')
    this.#nodes.delete(node)
    this.o.logger.log('warn', `node ${exit.message}; ${node.inflight} requests in flight fail`, {
      app: this.name,
      node: node.id,
      reason: exit.reason,
      oomKills: exit.oomKills,
      invocations: [...node.invocations],
    })
    void node.started?.destroy()
    if (!this.#closed) this.#scale()
  }

  async #drain(node: PoolNode) {
    this.#idle.delete(node)
    if (node.machine.state !== 'ready') return
    node.machine.transition('draining')
    if (node.inflight === 0) await this.#recycle(node)
  }

  async #recycle(node: PoolNode) {
    if (node.machine.state !== 'draining') return
    node.machine.transition('recycled')
    this.#nodes.delete(node)
    this.o.logger.log('info', 'node recycled', {
      app: this.name,
      node: node.id,
      served: node.served,
    })
    await node.started?.destroy()
  }
}
