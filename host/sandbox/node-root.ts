import { chown } from 'node:fs/promises'
import { join } from 'node:path'
import { containerCgroupDirs, type CgroupDirs } from './cgroups.ts'
import { resolveImageUser, type ImageUser } from './image-user.ts'
import { mountOverlay } from './mounts.ts'
import {
  nodeUserNamespace,
  type NodeUserNamespace,
  type UserNamespaceSupport,
} from './node-user-namespace.ts'
import { hostIdOf, type IdRange } from './user-namespace.ts'

export interface NodeRootOptions {
  /** The node's scratch tmpfs: `upper/`, `work/`, `root/` (the mount point) and `lower/`. */
  fsDir: string
  containerId: string
  /** The image's root filesystem; never written. */
  lowerDir: string
  lowerDev: number
  /** The image config's `User`. */
  imageUser: string | undefined
  /** The node's host id range (undefined: it runs without a user namespace). */
  range: IdRange | undefined
  usernsFile: string | undefined
  support: UserNamespaceSupport
  notIdmappable: Map<number, string>
  signal?: AbortSignal
}

export interface NodeRoot {
  user: ImageUser
  cgroups: CgroupDirs
  userns: NodeUserNamespace
  /** The host id of one of the node's ids (shifted into its range in a user namespace). */
  host(id: number): number
}

/**
 * The node's root: an overlay over the image itself, or over its idmapped view when the node
 * runs in its user namespace (node-user-namespace.ts), with the image user and the node's
 * cgroups looked up. Without a range to try, the overlay is mounted beside the lookups.
 */
export async function mountNodeRoot(o: NodeRootOptions): Promise<NodeRoot> {
  const overlay = (lower: string) =>
    mountOverlay(
      {
        lower,
        upper: join(o.fsDir, 'upper'),
        work: join(o.fsDir, 'work'),
        target: join(o.fsDir, 'root'),
      },
      o.signal,
    )
  const early = o.range ? undefined : overlay(o.lowerDir)
  const [user, cgroups] = await Promise.all([
    resolveImageUser(o.lowerDir, o.imageUser),
    containerCgroupDirs(o.containerId),
    early,
  ])
  const userns = await nodeUserNamespace({
    support: o.support,
    range: o.range,
    usernsFile: o.usernsFile,
    lowerDir: o.lowerDir,
    lowerDev: o.lowerDev,
    idmappedDir: join(o.fsDir, 'lower'),
    user,
    notIdmappable: o.notIdmappable,
    signal: o.signal,
  })
  const host = (id: number) => (userns.enabled ? hostIdOf(userns.range, id)! : id)
  if (!early) {
    // The overlay's root directory is the upper's: the node's root owns it.
    await chown(join(o.fsDir, 'upper'), host(0), host(0))
    await overlay(userns.enabled ? userns.lowerDir : o.lowerDir)
  }
  return { user, cgroups, userns, host }
}
