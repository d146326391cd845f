import { describe, expect, it } from 'vitest'
import { parseIgnoreRules } from '../../../host/deploy/ignore-rules.ts'

describe('parseIgnoreRules (.funcignore, gitignore syntax)', () => {
  const rules = parseIgnoreRules([
    '# a comment',
    '*.js.map',
    '.git*',
    'test',
    'dist/',
    '/only-top.txt',
    'docs/**/*.md',
    '!keep.js.map',
  ])
  it.each([
    // [path, isDirectory, ignored]
    ['app.js.map', false, true], // glob on a name
    ['src/deep/app.js.map', false, true], // unanchored: any depth
    ['keep.js.map', false, false], // re-included by "!"
    ['.gitignore', false, true], // "*" within a name
    ['test', true, true], // a folder by name
    ['src/test', false, true], // a name at any depth, file or folder
    ['dist', true, true], // trailing "/": folders only
    ['dist', false, false], // ... so a file named dist stays
    ['only-top.txt', false, true], // leading "/": anchored
    ['sub/only-top.txt', false, false], // ... not below
    ['docs/a/b/c.md', false, true], // "**" across folders
    ['docs/c.md', false, true], // "**/" matches zero folders too
    ['src/app.js', false, false], // nothing matches
    ['# a comment', false, false], // comments are not patterns
  ] as const)('%s (folder: %s) → ignored: %s', (path, isDirectory, ignored) => {
    expect(rules.ignores(path, isDirectory)).toBe(ignored)
  })
})
