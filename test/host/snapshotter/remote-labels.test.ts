import { describe, expect, it } from 'vitest'
import { remoteLayer } from '../../../host/snapshotter/remote-labels.ts'

const d = (c: string) => `sha256:${c.repeat(64)}`
const chain = 'sha256:' + 'c'.repeat(64)

describe('remoteLayer', () => {
  it('reads the CRI labels and pins the reference to the manifest digest containerd knows', () => {
    const labels = {
      'containerd.io/snapshot.ref': chain,
      'containerd.io/snapshot/cri.image-ref': 'edge.example:5000/apps/hello:v1',
      'containerd.io/snapshot/cri.layer-digest': d('2'),
      'containerd.io/snapshot/cri.image-layers': d('2'),
      'containerd.io/snapshot/cri.manifest-digest': d('f'),
    }
    expect(remoteLayer(labels)).toEqual({
      target: chain,
      reference: `edge.example:5000/apps/hello@${d('f')}`,
      layer: d('2'),
      top: true,
    })
  })

  it("reads ctr-remote rpull's stargz labels; a layer with layers above it is not the top", () => {
    const labels = {
      'containerd.io/snapshot.ref': chain,
      'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:5000/a:t',
      'containerd.io/snapshot/remote/stargz.digest': d('1'),
      'containerd.io/snapshot/remote/stargz.layers': `${d('1')},${d('2')}`,
    }
    expect(remoteLayer(labels)).toMatchObject({ reference: '127.0.0.1:5000/a:t', top: false })
  })

  it('a top layer whose digest also appears lower down is told by the list length, not by position', () => {
    const labels = {
      'containerd.io/snapshot.ref': chain,
      'containerd.io/snapshot/cri.image-ref': 'r.example/a:t',
      'containerd.io/snapshot/cri.layer-digest': d('1'),
      'containerd.io/snapshot/cri.image-layers': `${d('1')},${d('2')},${d('1')}`,
    }
    expect(remoteLayer(labels)?.top).toBe(false)
  })

  it.each([
    ['no labels at all (an ordinary Prepare)', {}],
    ['no target chain ID', { 'containerd.io/snapshot/cri.image-ref': 'r.example/a:t' }],
    [
      'a layer digest that is not a digest',
      {
        'containerd.io/snapshot.ref': chain,
        'containerd.io/snapshot/cri.image-ref': 'r.example/a:t',
        'containerd.io/snapshot/cri.layer-digest': 'latest',
        'containerd.io/snapshot/cri.image-layers': 'latest',
      },
    ],
    [
      'no layer list (the top cannot be told)',
      {
        'containerd.io/snapshot.ref': chain,
        'containerd.io/snapshot/cri.image-ref': 'r.example/a:t',
        'containerd.io/snapshot/cri.layer-digest': d('1'),
      },
    ],
  ])('is an ordinary Prepare with %s', (_why, labels: Record<string, string>) => {
    expect(remoteLayer(labels)).toBeUndefined()
  })
})
