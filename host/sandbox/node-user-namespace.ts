import { mkdir } from 'node:fs/promises'
import { ThawError } from '../../runtime/errors.ts'
import type { ImageUser } from './image-user.ts'
import { hostIdOf, idmapMount, type IdRange } from './user-namespace.ts'

/**
 * Whether nodes get a user namespace: `auto` where the sandbox's probe and the image's mount
 * allow it (else the node runs without one and says why), `required` (a node that cannot have
 * one fails to start; so does the sandbox if the probe fails), `off`.
 */
export type UserNamespacePolicy = 'auto' | 'required' | 'off'

/** The sandbox's answer: whether nodes try, and why not. */
export interface UserNamespaceSupport {
  policy: UserNamespacePolicy
  enabled: boolean
  /** Why nodes run without one (the probe's failure, or the policy). */
  reason?: string
}

/** What one node got. */
export type NodeUserNamespace =
  | { enabled: true; path: string; range: IdRange; lowerDir: string }
  | { enabled: false; reason: string }

export interface NodeUserNamespaceOptions {
  support: UserNamespaceSupport
  /** The node's range (undefined when its lease is past the last block). */
  range: IdRange | undefined
  /** The user namespace made with the node's network namespace (undefined: none was). */
  usernsFile: string | undefined
  lowerDir: string
  /** st_dev of the lower: filesystems found unable to idmap are not tried again. */
  lowerDev: number
  /** Where the idmapped view of the lower goes. */
  idmappedDir: string
  user: ImageUser
  /** Shared by the sandbox's nodes: st_dev → why it cannot be idmapped. */
  notIdmappable: Map<number, string>
  signal?: AbortSignal
}

/**
 * Decides whether a node runs in its user namespace and, if so, binds the image's root at
 * `idmappedDir` with the namespace's ids (the overlay's lower is then that view).
 */
export async function nodeUserNamespace(o: NodeUserNamespaceOptions): Promise<NodeUserNamespace> {
  const without = (reason: string): NodeUserNamespace => {
    if (o.support.policy === 'required') {
      throw new ThawError('USERNS_UNAVAILABLE', `the node cannot have a user namespace: ${reason}`)
    }
    return { enabled: false, reason }
  }
  if (!o.support.enabled) return without(o.support.reason ?? 'user namespaces are off')
  if (!o.range || !o.usernsFile) return without('no id range is left for this node')
  const ids = [o.user.uid, o.user.gid, ...o.user.additionalGids]
  const outside = ids.find((id) => hostIdOf(o.range!, id) === undefined)
  if (outside !== undefined) return without(`the image's user or group ${outside} is past 65535`)
  const known = o.notIdmappable.get(o.lowerDev)
  if (known) return without(known)
  await mkdir(o.idmappedDir, { recursive: true })
  try {
    await idmapMount(o.usernsFile, o.lowerDir, o.idmappedDir, o.signal)
  } catch (err) {
    if (!(err instanceof ThawError && err.code === 'IDMAP_UNSUPPORTED')) throw err
    const reason = `the image's filesystem cannot be idmapped (${err.message})`
    o.notIdmappable.set(o.lowerDev, reason)
    return without(reason)
  }
  return { enabled: true, path: o.usernsFile, range: o.range, lowerDir: o.idmappedDir }
}
