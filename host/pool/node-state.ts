import { ThawError } from '../../runtime/errors.ts'

/**
 * The life of one pool node (host/README.md, "Pool states"):
 *
 *   warm ──► specializing ──► ready ──► draining ──► recycled
 *     │            │            │           │
 *     └──► recycled└──► failed  └──► failed └──► failed
 *
 * `recycled` and `failed` are final. Every change goes through `transition`, which throws
 * `NODE_STATE_ILLEGAL` for an edge not in the table: a bug in the pool, never the user's fault.
 */
export type PoolNodeState = 'warm' | 'specializing' | 'ready' | 'draining' | 'recycled' | 'failed'

export const NODE_TRANSITIONS: Readonly<Record<PoolNodeState, readonly PoolNodeState[]>> = {
  // A warm node is specialized for a cold start, or destroyed when the pool shrinks or closes.
  warm: ['specializing', 'recycled', 'failed'],
  // Specializing ends ready, or failed (mount, runtime or app start failed), or recycled when
  // the host closes mid-start.
  specializing: ['ready', 'failed', 'recycled'],
  // Ready serves requests until idle (draining) or its process dies (failed).
  ready: ['draining', 'failed'],
  // Draining takes no new requests; in-flight ones finish, then it is destroyed.
  draining: ['recycled', 'failed'],
  recycled: [],
  failed: [],
}

export function canTransition(from: PoolNodeState, to: PoolNodeState): boolean {
  return NODE_TRANSITIONS[from].includes(to)
}

/** A state holder that only moves along NODE_TRANSITIONS. */
export class NodeStateMachine {
  #state: PoolNodeState = 'warm'
  readonly #listeners: ((from: PoolNodeState, to: PoolNodeState) => void)[] = []

  constructor(readonly nodeId: string) {}

  get state(): PoolNodeState {
    return this.#state
  }

  get final(): boolean {
    return NODE_TRANSITIONS[this.#state].length === 0
  }

  onChange(listener: (from: PoolNodeState, to: PoolNodeState) => void): void {
    this.#listeners.push(listener)
  }

  transition(to: PoolNodeState): void {
    const from = this.#state
    if (!canTransition(from, to)) {
      throw new ThawError(
        'NODE_STATE_ILLEGAL',
        `node ${this.nodeId}: illegal transition ${from} → ${to}`,
      )
    }
    this.#state = to
    for (const l of this.#listeners) l(from, to)
  }
}
