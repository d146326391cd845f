import { readdir, readFile } from 'node:fs/promises'
import { join, relative, resolve, dirname } from 'node:path'
import { describe, expect, it } from 'vitest'

// STYLE.md rule 1: runtime/ is imported by host/ and registry-edge/; those two never import each
// other (they speak HTTP); the worker inside a node imports only the protocol (and node:*).
const ROOT = resolve(import.meta.dirname, '..')

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name) && !entry.parentPath.includes('node_modules')) {
      out.push(relative(ROOT, join(entry.parentPath, entry.name)))
    }
  }
  return out
}

async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8')
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)]
  return specs
    .map((m) => m[1] ?? m[2]!)
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(ROOT, resolve(dirname(join(ROOT, file)), s)))
}

describe('import rules', () => {
  it('runtime/ imports nothing from host/ or registry-edge/', async () => {
    for (const file of await sources('runtime')) {
      for (const target of await importsOf(file)) {
        expect(target, `${file} imports ${target}`).not.toMatch(/^(host|registry-edge)\//)
      }
    }
  })

  it('host/ and registry-edge/ never import each other', async () => {
    for (const file of await sources('host')) {
      for (const target of await importsOf(file)) {
        expect(target, `${file} imports ${target}`).not.toMatch(/^registry-edge\//)
      }
    }
    for (const file of await sources('registry-edge')) {
      for (const target of await importsOf(file)) {
        expect(target, `${file} imports ${target}`).not.toMatch(/^host\//)
      }
    }
  })

  it('the worker imports only the protocol and itself', async () => {
    for (const file of await sources('runtime').then((f) => f.filter((x) => x.startsWith('runtime/worker/')))) {
      for (const target of await importsOf(file)) {
        expect(target, `${file} imports ${target}`).toMatch(/^runtime\/(worker|protocol)\//)
      }
    }
  })
})
