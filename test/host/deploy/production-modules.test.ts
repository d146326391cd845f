import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  collectModuleFiles,
  placeProductionModules,
} from '../../../host/deploy/production-modules.ts'
import { tmpDir } from '../../support/tmp.ts'

async function pkg(dir: string, json: object, files: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify(json))
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
}

describe('placeProductionModules', () => {
  it('follows dependencies transitively, hoists them, nests a conflicting version under its parent, and skips dev and missing optional ones', async () => {
    const root = await tmpDir('thaw-modules-')
    const app = join(root, 'app')
    await pkg(app, {
      dependencies: { a: '1', c: '1' },
      optionalDependencies: { absent: '1' },
      devDependencies: { dev: '1' },
    })
    await pkg(
      join(app, 'node_modules/a'),
      { version: '1.0.0', dependencies: { b: '1' } },
      { 'index.js': 'a' },
    )
    await pkg(join(app, 'node_modules/b'), { version: '1.0.0' }, { 'index.js': 'b1' })
    // c needs b@2, installed under c, as npm would
    await pkg(join(app, 'node_modules/c'), { version: '1.0.0', dependencies: { b: '2' } })
    await pkg(
      join(app, 'node_modules/c/node_modules/b'),
      { version: '2.0.0' },
      { 'index.js': 'b2' },
    )
    await pkg(join(app, 'node_modules/dev'), { version: '1.0.0' })
    const placed = await placeProductionModules(app)
    expect(placed.map((p) => p.imageDir).sort()).toEqual([
      'node_modules/a',
      'node_modules/b',
      'node_modules/c',
      'node_modules/c/node_modules/b',
    ])
    const files = await collectModuleFiles(placed)
    const text = (path: string) => files.find((f) => f.path === path)?.data.toString()
    expect(text('node_modules/b/index.js')).toBe('b1')
    expect(text('node_modules/c/node_modules/b/index.js')).toBe('b2')
    // c's own node_modules is not copied twice as part of c
    expect(files.filter((f) => f.path.endsWith('b/index.js'))).toHaveLength(2)
  })

  it('copies symlinked packages (thaw init links them) as real files, found from the link target up', async () => {
    const root = await tmpDir('thaw-modules-')
    const store = join(root, 'store/node_modules')
    await pkg(join(store, 'lib'), { dependencies: { dep: '1' } }, { 'index.js': 'lib' })
    await pkg(join(store, 'dep'), {}, { 'index.js': 'dep' })
    const app = join(root, 'app')
    await pkg(app, { dependencies: { lib: '1' } })
    await mkdir(join(app, 'node_modules'))
    await symlink(join(store, 'lib'), join(app, 'node_modules/lib'))
    const files = await collectModuleFiles(await placeProductionModules(app))
    expect(files.map((f) => f.path).sort()).toEqual([
      'node_modules/dep/index.js',
      'node_modules/dep/package.json',
      'node_modules/lib/index.js',
      'node_modules/lib/package.json',
    ])
  })
})

describe('collectModuleFiles with links', () => {
  it('walks a folder that links back to its parent once, without looping', async () => {
    const root = await tmpDir('thaw-modules-')
    const app = join(root, 'app')
    await pkg(app, { dependencies: { loop: '1' } })
    await pkg(join(app, 'node_modules/loop'), {}, { 'index.js': 'loop' })
    await symlink('..', join(app, 'node_modules/loop/self'))
    const files = await collectModuleFiles(await placeProductionModules(app))
    expect(files.map((f) => f.path).sort()).toEqual([
      'node_modules/loop/index.js',
      'node_modules/loop/package.json',
    ])
  })
})
