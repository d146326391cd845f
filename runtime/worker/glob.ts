import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * A small glob for package.json#main (Node 20 has no fs.glob; the worker bundles no packages).
 * The worker uses globby; this covers what `main` patterns use: `*`, `?`, `[...]`, `**` as a
 * whole segment, and `{a,b}` (nested). Like globby's defaults, `*` does not match dot files. Unlike
 * it, `**` does not descend into node_modules or dot directories: loading library files as entry
 * points would break the app anyway. Returns paths relative to cwd without duplicates: brace
 * alternatives in the order written, the matches of each sorted (globby promises no order).
 */
export async function expandGlob(pattern: string, cwd: string): Promise<string[]> {
  const out = new Set<string>()
  for (const p of expandBraces(pattern.replace(/^\.\//, ''))) {
    const found = new Set<string>()
    const segments = p.split('/').filter((s) => s !== '' && s !== '.')
    await walk(cwd, '', segments, found)
    for (const f of [...found].sort()) out.add(f)
  }
  return [...out]
}

/** `a/{b,c{d,e}}` → `a/b`, `a/cd`, `a/ce`. Unbalanced braces are taken literally. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{')
  if (open === -1) return [pattern]
  let depth = 0
  const commas: number[] = []
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '{') depth++
    else if (c === '}' && --depth === 0) {
      if (commas.length === 0) break
      const head = pattern.slice(0, open)
      const tail = pattern.slice(i + 1)
      const bounds = [open, ...commas, i]
      const out: string[] = []
      for (let k = 0; k < bounds.length - 1; k++) {
        const alt = pattern.slice(bounds[k]! + 1, bounds[k + 1])
        out.push(...expandBraces(head + alt + tail))
      }
      return out
    } else if (c === ',' && depth === 1) commas.push(i)
  }
  return [pattern]
}

function isMagic(segment: string): boolean {
  return /[*?[]/.test(segment)
}

/** One path segment as a regex: `*` → anything but "/", `?` → one character, `[...]` kept. */
export function segmentRegex(segment: string): RegExp {
  let re = ''
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2)
      if (end === -1) re += '\\['
      else {
        re += `[${segment
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

async function walk(root: string, rel: string, segments: string[], found: Set<string>) {
  const [segment, ...rest] = segments
  if (segment === undefined) {
    if (rel && (await isFile(join(root, rel)))) found.add(rel)
    return
  }
  if (segment === '**') {
    await walk(root, rel, rest, found)
    for (const entry of await listDir(join(root, rel))) {
      if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules') {
        await walk(root, joinRel(rel, entry.name), segments, found)
      }
    }
    return
  }
  if (!isMagic(segment)) {
    await walk(root, joinRel(rel, segment), rest, found)
    return
  }
  const re = segmentRegex(segment)
  for (const entry of await listDir(join(root, rel))) {
    if (entry.name.startsWith('.') && !segment.startsWith('.')) continue
    if (re.test(entry.name)) await walk(root, joinRel(rel, entry.name), rest, found)
  }
}

function joinRel(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name
}

async function listDir(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true })
  } catch {
    return []
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}
