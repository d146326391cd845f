import { describe, expect, it } from 'vitest'
import { appAddress } from '../../../host/server/app-address.ts'

describe('appAddress', () => {
  const cases: [string | undefined, string, ReturnType<typeof appAddress>, string][] = [
    ['myapp.localhost:7071', '/api/hello?x=1', { app: 'myapp', path: '/api/hello?x=1', by: 'host' }, 'host name with port'],
    ['MyApp.LocalHost', '/api/hello', { app: 'myapp', path: '/api/hello', by: 'host' }, 'host names are case-insensitive'],
    ['myapp.localhost.', '/api/hello', { app: 'myapp', path: '/api/hello', by: 'host' }, 'a fully qualified name with its trailing dot'],
    ['127.0.0.1:7071', '/myapp/api/hello?name=a', { app: 'myapp', path: '/api/hello?name=a', by: 'path' }, 'path addressing keeps the query'],
    ['localhost:7071', '/myapp', { app: 'myapp', path: '/', by: 'path' }, 'the app root alone'],
    ['a.b.localhost', '/x/api/y', { app: 'x', path: '/api/y', by: 'path' }, 'two labels are no app name: the path decides'],
    ['localhost', '/', undefined, 'no app in host or path'],
    ['localhost', '/-bad/api', undefined, 'not a valid app name'],
    ['localhost', '/admin/apps', undefined, 'reserved name'],
  ]
  it.each(cases)('%s %s', (host, path, expected) => {
    expect(appAddress(host, path, 'localhost')).toEqual(expected)
  })
})
