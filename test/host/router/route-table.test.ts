import { describe, expect, it } from 'vitest'
import {
  createRouteTable,
  parseRouteTemplate,
  type HttpFunctionSpec,
} from '../../../host/router/index.ts'

function fn(name: string, route: string | null, methods: string[] | null = null): HttpFunctionSpec {
  return { name, route, methods, authLevel: 'anonymous' }
}

describe('route templates', () => {
  // [template, path, expected params (undefined = no match)]
  const table: [string, string, Record<string, string | null> | undefined][] = [
    ['hello', '/api/hello', {}],
    ['hello', '/API/Hello', {}], // literals and the prefix are case-insensitive
    ['hello', '/api/hello/', {}], // one trailing slash is ignored
    ['hello', '/api/hello/x', undefined], // extra segment
    ['items/{id}', '/api/items/42', { id: '42' }],
    ['items/{id}', '/api/items', undefined], // required parameter missing
    ['items/{id?}', '/api/items', { id: null }], // absent optional is null, as Azure adds it
    ['items/{id?}', '/api/items/7', { id: '7' }],
    ['items/{id=5}', '/api/items', { id: '5' }], // default value
    ['items/{id:int}', '/api/items/-12', { id: '-12' }],
    ['items/{id:int}', '/api/items/abc', undefined], // constraint fails
    ['items/{id:int}', '/api/items/99999999999', undefined], // out of Int32 range
    ['items/{id:int?}', '/api/items', { id: null }], // optional constrained
    ['items/{id:int:min(10)}', '/api/items/9', undefined], // chained constraints
    ['items/{id:int:min(10)}', '/api/items/10', { id: '10' }],
    [
      'u/{id:guid}',
      '/api/u/0f8fad5b-d9cb-469f-a165-70867728950e',
      { id: '0f8fad5b-d9cb-469f-a165-70867728950e' },
    ],
    ['u/{name:alpha}', '/api/u/abc1', undefined],
    ['u/{name:length(2,3)}', '/api/u/abcd', undefined],
    ['u/{flag:bool}', '/api/u/TRUE', { flag: 'TRUE' }],
    ['u/{ssn:regex(^\\d{{3}}-\\d{{2}}$)}', '/api/u/123-45', { ssn: '123-45' }], // {{ }} escape braces
    ['u/{ssn:regex(^\\d{{3}}-\\d{{2}}$)}', '/api/u/123-456', undefined],
    ['files/{*path}', '/api/files/a/b/c.txt', { path: 'a/b/c.txt' }], // catch-all keeps slashes
    ['files/{**path}', '/api/files', { path: null }], // empty catch-all
    ['files/{name}.{ext}', '/api/files/a.b.c', { name: 'a.b', ext: 'c' }], // complex: last dot splits
    ['files/{name}.{ext?}', '/api/files/readme', { name: 'readme', ext: null }],
    ['files/{name}.{ext?}', '/api/files/readme.md', { name: 'readme', ext: 'md' }],
    ['v{major:int}/x', '/api/v2/x', { major: '2' }],
    ['say/{word}', '/api/say/caf%C3%A9', { word: 'café' }], // segments are percent-decoded
    ['say/{word}', '/api/say/a%2Fb', { word: 'a%2Fb' }], // but an encoded slash stays encoded
  ]
  it.each(table)('%s matches %s → %j', (template, path, expected) => {
    const routes = createRouteTable([fn('f', template)])
    const m = routes.match('GET', path)
    if (expected === undefined) expect(m.kind).toBe('not-found')
    else expect(m).toMatchObject({ kind: 'found', params: expected })
  })

  // Bad templates, each with the reason it is refused.
  const bad: [string, RegExp][] = [
    ['a//b', /cannot appear consecutively/], // empty segment
    ['items/{id', /incomplete parameter/], // unclosed brace
    ['items/id}', /incomplete parameter/], // stray closing brace
    ['items/{}', /parameter name '' is invalid/], // empty name
    ['{a}/{A}', /appears more than one time/], // names are case-insensitive
    ['{*rest}/x', /catch-all parameter can only appear as the last segment/],
    ['x{*rest}', /cannot contain a catch-all/], // catch-all inside a complex segment
    ['{*rest?}', /catch-all parameter cannot be marked optional/],
    ['{a}{b}', /two consecutive parameters/],
    ['{a?}-{b}', /optional parameter must be at the end of the segment/],
    ['{id:nosuch}', /constraint reference 'nosuch' could not be resolved/],
    ['{id:min(x)}', /Invalid route constraint 'min\(x\)'/],
    ['{id:regex(()}', /unbalanced parenthesis/],
    ['{id?}/details', /can only be followed by other optional parameters/],
    ['what?', /Literal sections cannot contain the '\?' character/],
  ]
  it.each(bad)('refuses %s', (template, message) => {
    expect(() => parseRouteTemplate(template)).toThrow(message)
    const routes = createRouteTable([fn('bad', template), fn('good', 'ok')])
    expect(routes.problems).toEqual([
      { function: 'bad', code: 'ROUTE_INVALID', message: expect.stringMatching(message) },
    ])
    expect(routes.match('GET', '/api/ok').kind).toBe('found') // the rest of the app still routes
  })
})

describe('the route table', () => {
  it('uses the function name when the route is absent or empty', () => {
    const routes = createRouteTable([fn('Hello', null), fn('other', '')])
    expect(routes.match('GET', '/api/hello')).toMatchObject({
      kind: 'found',
      entry: { path: 'api/Hello' },
    })
    expect(routes.match('GET', '/api/other')).toMatchObject({ kind: 'found' })
  })

  it('applies the route prefix from host.json, including an empty one', () => {
    expect(
      createRouteTable([fn('h', 'x')], { routePrefix: 'v1/fn' }).match('GET', '/v1/fn/x').kind,
    ).toBe('found')
    const bare = createRouteTable([fn('h', 'x')], { routePrefix: '' })
    expect(bare.match('GET', '/x').kind).toBe('found')
    expect(bare.match('GET', '/api/x').kind).toBe('not-found')
  })

  it('answers method-not-allowed with the allowed methods when only the method differs', () => {
    const routes = createRouteTable([
      fn('a', 'things', ['GET']),
      fn('b', 'things', ['POST', 'PUT']),
    ])
    expect(routes.match('POST', '/api/things')).toMatchObject({
      kind: 'found',
      entry: { fn: { name: 'b' } },
    })
    expect(routes.match('DELETE', '/api/things')).toEqual({
      kind: 'method-not-allowed',
      allowed: ['GET', 'POST', 'PUT'],
    })
    expect(routes.match('DELETE', '/api/nothing')).toEqual({ kind: 'not-found' })
  })

  it('matches any method when none is given', () => {
    expect(createRouteTable([fn('a', 'x', null)]).match('PATCH', '/api/x').kind).toBe('found')
  })

  it('prefers literals over constrained over plain parameters over catch-alls', () => {
    const routes = createRouteTable([
      fn('catchall', 'p/{*rest}'),
      fn('plain', 'p/{x}'),
      fn('constrained', 'p/{x:int}'),
      fn('literal', 'p/new'),
      fn('bare', 'p/{x?}'),
    ])
    const winner = (path: string) => {
      const m = routes.match('GET', path)
      return m.kind === 'found' ? m.entry.fn.name : m.kind
    }
    expect(winner('/api/p/new')).toBe('literal')
    expect(winner('/api/p/42')).toBe('constrained')
    expect(winner('/api/p/abc')).toBe('plain')
    expect(winner('/api/p/a/b')).toBe('catchall')
    expect(winner('/api/p')).toBe('bare') // shorter template wins on a prefix
  })

  // Collisions: the later function is refused, the earlier keeps the route.
  const collisions: [string, HttpFunctionSpec[], string | undefined][] = [
    ['same template, same method', [fn('a', 'x/{id}', ['GET']), fn('b', 'x/{id}', ['GET'])], 'b'],
    ['same template, different parameter name', [fn('a', 'x/{id}'), fn('b', 'X/{other}')], 'b'],
    ['any method overlaps everything', [fn('a', 'x', null), fn('b', 'x', ['POST'])], 'b'],
    ['route equal to another function name', [fn('a', null), fn('b', 'a')], 'b'],
    [
      'different methods do not collide',
      [fn('a', 'x', ['GET']), fn('b', 'x', ['POST'])],
      undefined,
    ],
    [
      'different constraints do not collide',
      [fn('a', 'x/{id:int}'), fn('b', 'x/{id:alpha}')],
      undefined,
    ],
  ]
  it.each(collisions)('collision: %s', (_name, functions, refused) => {
    const routes = createRouteTable(functions)
    if (!refused) return expect(routes.problems).toEqual([])
    expect(routes.problems).toEqual([
      {
        function: refused,
        code: 'ROUTE_CONFLICT',
        message: expect.stringContaining('conflicts with'),
      },
    ])
    expect(routes.entries.map((e) => e.fn.name)).not.toContain(refused)
  })

  it('reserves the admin path for the host', () => {
    const routes = createRouteTable([fn('a', 'admin/x'), fn('b', 'admin/x')], { routePrefix: '' })
    expect(routes.problems.map((p) => p.code)).toEqual(['ROUTE_RESERVED', 'ROUTE_RESERVED'])
    expect(createRouteTable([fn('a', 'admin/x')]).problems).toEqual([]) // under /api it is fine
  })
})
