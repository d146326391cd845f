import { describe, expect, it } from 'vitest'
import {
  canTransition,
  NODE_TRANSITIONS,
  NodeStateMachine,
  type PoolNodeState,
} from '../../../host/pool/node-state.ts'

const ALL: PoolNodeState[] = ['warm', 'specializing', 'ready', 'draining', 'recycled', 'failed']

describe('node state machine', () => {
  it('walks the normal life warm → specializing → ready → draining → recycled', () => {
    const m = new NodeStateMachine('n0')
    const seen: string[] = []
    m.onChange((from, to) => seen.push(`${from}>${to}`))
    for (const s of ['specializing', 'ready', 'draining', 'recycled'] as const) m.transition(s)
    expect(m.state).toBe('recycled')
    expect(m.final).toBe(true)
    expect(seen).toEqual(['warm>specializing', 'specializing>ready', 'ready>draining', 'draining>recycled'])
  })

  const illegal: [PoolNodeState, PoolNodeState, string][] = [
    ['warm', 'ready', 'a node must be specialized before it serves'],
    ['warm', 'draining', 'nothing to drain on a node that never ran'],
    ['ready', 'specializing', 'a node is single use: it never runs a second image'],
    ['ready', 'warm', 'a node never goes back to the warm pool'],
    ['ready', 'recycled', 'a ready node drains first'],
    ['draining', 'ready', 'a draining node takes no new requests'],
    ['recycled', 'warm', 'recycled is final'],
    ['failed', 'recycled', 'failed is final'],
    ['failed', 'ready', 'failed is final'],
  ]
  it.each(illegal)('refuses %s → %s (%s)', (from, to) => {
    expect(canTransition(from, to)).toBe(false)
    const m = machineIn(from)
    expect(() => m.transition(to)).toThrowError(expect.objectContaining({ code: 'NODE_STATE_ILLEGAL' }))
    expect(m.state).toBe(from)
  })

  it('allows failure from every live state and nothing out of final ones', () => {
    for (const s of ALL) {
      const live = s !== 'recycled' && s !== 'failed'
      expect(canTransition(s, 'failed')).toBe(live)
      if (!live) expect(NODE_TRANSITIONS[s]).toEqual([])
    }
  })
})

function machineIn(state: PoolNodeState): NodeStateMachine {
  const paths: Record<PoolNodeState, PoolNodeState[]> = {
    warm: [],
    specializing: ['specializing'],
    ready: ['specializing', 'ready'],
    draining: ['specializing', 'ready', 'draining'],
    recycled: ['recycled'],
    failed: ['failed'],
  }
  const m = new NodeStateMachine('n1')
  for (const s of paths[state]) m.transition(s)
  return m
}
