import { join } from 'node:path'
import { run } from './processes.ts'
import { createRng, generateTree, mutateTree, type TreeOptions } from './random-tree.ts'

/**
 * A random two-layer image made by umoci in an OCI layout (tag `t`): the second layer changes the
 * first (whiteouts, replaced files). Returns the layout path.
 */
export async function randomUmociImage(dir: string, seed: number, tree: TreeOptions): Promise<string> {
  const rng = createRng(seed)
  const layout = join(dir, 'layout')
  const bundle = join(dir, 'bundle')
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', `${layout}:t`])
  await run('umoci', ['unpack', '--image', `${layout}:t`, bundle])
  generateTree(join(bundle, 'rootfs'), rng, tree)
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  mutateTree(join(bundle, 'rootfs'), rng, tree)
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  return layout
}

/** `umoci unpack` of `layout:tag` into `dir`; returns the rootfs path. */
export async function umociUnpack(layout: string, tag: string, dir: string): Promise<string> {
  await run('umoci', ['unpack', '--image', `${layout}:${tag}`, dir])
  return join(dir, 'rootfs')
}
