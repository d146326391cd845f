import { isDigest, type Digest } from '../../runtime/oci/digest.ts'
import { formatImageReference, parseImageReference } from '../../runtime/oci/reference.ts'

/**
 * The labels a layer's Prepare carries when containerd unpacks an image for a remote snapshotter.
 * containerd's unpacker copies every `containerd.io/snapshot/`-prefixed annotation of the layer
 * descriptor into the labels, and sets `containerd.io/snapshot.ref` to the layer's chain ID (the
 * name the committed snapshot must have). The annotations come from a handler wrapper: the CRI
 * plugin's (containerd pkg/snapshotters: `cri.*`) or `ctr-remote image rpull`'s (stargz's
 * fs/source: `remote/stargz.*`). Both list the image's layers from this one to the top.
 */
export const SNAPSHOT_REF = 'containerd.io/snapshot.ref'
const CRI = {
  ref: 'containerd.io/snapshot/cri.image-ref',
  layer: 'containerd.io/snapshot/cri.layer-digest',
  layers: 'containerd.io/snapshot/cri.image-layers',
  manifest: 'containerd.io/snapshot/cri.manifest-digest',
}
const RPULL = {
  ref: 'containerd.io/snapshot/remote/stargz.reference',
  layer: 'containerd.io/snapshot/remote/stargz.digest',
  layers: 'containerd.io/snapshot/remote/stargz.layers',
}

export interface RemoteLayer {
  /** The chain ID: what the committed snapshot is named. */
  target: string
  /** The image reference to acquire: pinned to the manifest digest when containerd told it. */
  reference: string
  layer: Digest
  /**
   * The image's top layer. Both label sets list the layers from this one upwards ("children[i:]",
   * cut short to fit 4 KiB, never below two digests), so only the top layer's list has one entry.
   */
  top: boolean
}

/** The remote layer a Prepare asks for, or undefined for an ordinary Prepare. */
export function remoteLayer(labels: Record<string, string>): RemoteLayer | undefined {
  const target = labels[SNAPSHOT_REF]
  const set = labels[CRI.ref] ? CRI : labels[RPULL.ref] ? RPULL : undefined
  if (!target || !set) return undefined
  const layer = labels[set.layer]
  if (!layer || !isDigest(layer)) return undefined
  const layers = (labels[set.layers] ?? '').split(',').filter(Boolean)
  if (layers.length === 0) return undefined
  const manifest = set === CRI ? labels[CRI.manifest] : undefined
  let reference = labels[set.ref]!
  if (manifest && isDigest(manifest)) {
    const ref = parseImageReference(reference)
    reference = formatImageReference({ ...ref, tag: undefined, digest: manifest })
  }
  return { target, reference, layer, top: layers.length === 1 && layers[0] === layer }
}
