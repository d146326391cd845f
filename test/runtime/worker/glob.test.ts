import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { expandBraces, expandGlob } from '../../../runtime/worker/glob.ts'
import { tmpDir } from '../../support/tmp.ts'

let root: string
const FILES = [
  'index.js',
  'src/index.js',
  'src/functions/a.js',
  'src/functions/b.js',
  'src/functions/b.ts',
  'src/functions/.hidden.js',
  'src/functions/nested/c.js',
  'dist/src/functions/a.js',
  'node_modules/lib/index.js',
]

beforeAll(async () => {
  root = await tmpDir()
  for (const f of FILES) {
    await mkdir(dirname(join(root, f)), { recursive: true })
    await writeFile(join(root, f), '')
  }
})

describe('the package.json#main glob', () => {
  // The main patterns of Azure's docs and templates, and a few edges.
  const table: [string, string[]][] = [
    ['index.js', ['index.js']],
    ['./src/index.js', ['src/index.js']], // a leading ./ is fine
    ['src/functions/*.js', ['src/functions/a.js', 'src/functions/b.js']], // * skips dot files
    ['src/{index.js,functions/*.js}', ['src/index.js', 'src/functions/a.js', 'src/functions/b.js']],
    ['dist/src/functions/*.js', ['dist/src/functions/a.js']],
    ['src/functions/?.ts', ['src/functions/b.ts']],
    ['src/functions/[ab].js', ['src/functions/a.js', 'src/functions/b.js']],
    [
      'src/**/*.js',
      ['src/functions/a.js', 'src/functions/b.js', 'src/functions/nested/c.js', 'src/index.js'],
    ],
    ['**/index.js', ['index.js', 'src/index.js']], // ** does not enter node_modules
    ['src/functions/*.mjs', []],
    ['missing/*.js', []],
  ]
  it.each(table)('%s', async (pattern, expected) => {
    expect(await expandGlob(pattern, root)).toEqual(expected)
  })

  it('expands nested braces in order', () => {
    expect(expandBraces('a/{b,c{d,e}}/f')).toEqual(['a/b/f', 'a/cd/f', 'a/ce/f'])
    expect(expandBraces('{single}')).toEqual(['{single}']) // no comma: literal, as in globby
  })
})
