/**
 * `WWW-Authenticate` parsing (RFC 9110 section 11.6.1):
 *
 *   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 *
 * A header may hold several challenges separated by commas, which also separate parameters, so
 * after each comma we look ahead: `name=` continues the current challenge, anything else starts a
 * new one. Registries send e.g.
 *   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"
 */
export interface Challenge {
  /** Lowercased: `bearer`, `basic`. */
  scheme: string
  /** Parameter names lowercased, values unquoted. */
  params: Record<string, string>
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/
const PARAM =
  /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+)/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/

export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = []
  let rest = header
  let current: Challenge | undefined
  for (let guard = 0; guard < 1000; guard++) {
    rest = rest.replace(/^[ \t,]+/, '')
    if (!rest) break
    const param = current && PARAM.exec(rest)
    if (current && param) {
      current.params[param[1]!.toLowerCase()] = unquote(param[2]!)
      rest = rest.slice(param[0].length)
      continue
    }
    const scheme = TOKEN.exec(rest)
    if (!scheme) break // garbage: keep what was understood so far
    current = { scheme: scheme[0].toLowerCase(), params: {} }
    challenges.push(current)
    rest = rest.slice(scheme[0].length)
    // A token68 (e.g. `Negotiate abc==`) is the whole credential of this challenge.
    const spaced = /^[ \t]+/.exec(rest)
    if (spaced && !PARAM.test(rest.slice(spaced[0].length))) {
      const t68 = TOKEN68.exec(rest.slice(spaced[0].length))
      if (t68) rest = rest.slice(spaced[0].length + t68[0].length)
    }
  }
  return challenges
}

function unquote(value: string): string {
  if (!value.startsWith('"')) return value
  return value.slice(1, -1).replace(/\\(.)/g, '$1')
}
