/**
 * `.funcignore` rules (gitignore syntax, as Azure Functions Core Tools read them): one pattern a
 * line, `#` comments, `*` and `?` within a path component, `**` across components, a leading `/`
 * or an inner `/` anchors to the app folder, a trailing `/` matches directories only, `!` re-includes.
 */
export interface IgnoreRules {
  /** `path` is relative to the app folder, with `/` separators. */
  ignores(path: string, isDirectory: boolean): boolean
}

interface Rule {
  regex: RegExp
  negate: boolean
  directoryOnly: boolean
}

/** Always left out of an image, whatever .funcignore says: secrets, VCS data, thaw's own state. */
export const ALWAYS_IGNORED = ['.git/', 'local.settings.json', '.thaw/', 'node_modules/']

/** Used when the app has no .funcignore: editor folders and tests. */
export const DEFAULT_IGNORED = [
  '.git*',
  '.vscode',
  'test/',
  'tests/',
  '__tests__/',
  '*.test.*',
  'test_*.py',
  '__pycache__/',
  '*.log',
]

export function parseIgnoreRules(lines: readonly string[]): IgnoreRules {
  const rules = lines
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(toRule)
  return {
    ignores(path, isDirectory) {
      let ignored = false
      for (const rule of rules) {
        if (rule.directoryOnly && !isDirectory) continue
        if (rule.regex.test(path)) ignored = !rule.negate
      }
      return ignored
    },
  }
}

function toRule(line: string): Rule {
  const negate = line.startsWith('!')
  let pattern = negate ? line.slice(1) : line
  const directoryOnly = pattern.endsWith('/')
  pattern = pattern.replace(/\/+$/, '')
  const anchored = pattern.includes('/')
  pattern = pattern.replace(/^\//, '')
  const body = globToRegex(pattern)
  // Unanchored patterns match a name at any depth.
  const regex = new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`)
  return { regex, negate, directoryOnly }
}

function globToRegex(glob: string): string {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/'
      out += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return out
}
