import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { authorize, generateKey, readSecretsDir, type KeySet } from '../../../host/router/index.ts'
import { tmpDir } from '../../support/tmp.ts'

const keys: KeySet = {
  master: 'MASTER',
  host: { default: 'HOSTKEY' },
  system: { eventgrid_extension: 'SYSKEY' },
  functions: { Secret: { default: 'FNKEY' }, other: { default: 'OTHERKEY' } },
}

function request(path: string, headers: Record<string, string> = {}) {
  return { headers: new Headers(headers), url: new URL(path, 'http://localhost') }
}

describe('keys', () => {
  // [required level, how the key is presented, expected outcome]
  const table: [
    string,
    'anonymous' | 'function' | 'admin' | 'system',
    ReturnType<typeof request>,
    string,
  ][] = [
    ['anonymous needs nothing', 'anonymous', request('/api/secret'), 'ok:anonymous'],
    [
      'anonymous with a wrong key still passes',
      'anonymous',
      request('/api/secret?code=nope'),
      'ok:anonymous',
    ],
    ['function level without a key', 'function', request('/api/secret'), '401:missing-key'],
    [
      'function level with a wrong key',
      'function',
      request('/api/secret?code=nope'),
      '401:unknown-key',
    ],
    [
      'function key of this function in ?code=',
      'function',
      request('/api/secret?code=FNKEY'),
      'ok:function',
    ],
    [
      'function key in x-functions-key',
      'function',
      request('/api/secret', { 'x-functions-key': 'FNKEY' }),
      'ok:function',
    ],
    ["another function's key", 'function', request('/api/secret?code=OTHERKEY'), '401:unknown-key'],
    [
      'a host key opens every function',
      'function',
      request('/api/secret?code=HOSTKEY'),
      'ok:function',
    ],
    [
      'the master key opens function level',
      'function',
      request('/api/secret?code=MASTER'),
      'ok:admin',
    ],
    [
      'a system key does not open function level',
      'function',
      request('/api/secret?code=SYSKEY'),
      '401:insufficient-level',
    ],
    [
      'admin level with a function key',
      'admin',
      request('/api/secret?code=FNKEY'),
      '401:insufficient-level',
    ],
    [
      'admin level with a host key',
      'admin',
      request('/api/secret?code=HOSTKEY'),
      '401:insufficient-level',
    ],
    [
      'admin level with the master key',
      'admin',
      request('/api/secret', { 'x-functions-key': 'MASTER' }),
      'ok:admin',
    ],
    ['system level with the system key', 'system', request('/x?code=SYSKEY'), 'ok:system'],
    [
      'the header wins over ?code=',
      'function',
      request('/api/secret?code=FNKEY', { 'x-functions-key': 'nope' }),
      '401:unknown-key',
    ],
    [
      'an empty header falls back to ?code=',
      'function',
      request('/api/secret?code=FNKEY', { 'x-functions-key': '' }),
      'ok:function',
    ],
    [
      'a key differing only in case is wrong',
      'function',
      request('/api/secret?code=fnkey'),
      '401:unknown-key',
    ],
  ]
  it.each(table)('%s', (_name, level, req, expected) => {
    const result = authorize(level, req, keys, 'secret') // function names are case-insensitive
    expect(result.ok ? `ok:${result.level}` : `${result.status}:${result.reason}`).toBe(expected)
  })

  it('generates 32-byte URL-safe keys', () => {
    const key = generateKey()
    expect(Buffer.from(key, 'base64url')).toHaveLength(32)
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(generateKey()).not.toBe(key)
  })

  it("reads Azure's files secret store", async () => {
    const dir = await tmpDir()
    await writeFile(
      join(dir, 'host.json'),
      JSON.stringify({
        masterKey: { name: 'master', value: 'M', encrypted: false },
        functionKeys: [{ name: 'default', value: 'H', encrypted: false }],
        systemKeys: [{ name: 'durabletask_extension', value: 'S', encrypted: false }],
      }),
    )
    await writeFile(
      join(dir, 'hello.json'),
      JSON.stringify({ keys: [{ name: 'default', value: 'F', encrypted: false }] }),
    )
    expect(await readSecretsDir(dir)).toEqual({
      master: 'M',
      host: { default: 'H' },
      system: { durabletask_extension: 'S' },
      functions: { hello: { default: 'F' } },
    })
  })

  // Secret stores thaw refuses, with the reason.
  const badStores: [string, Record<string, unknown>, RegExp][] = [
    [
      'an encrypted key',
      { 'host.json': { masterKey: { name: 'master', value: 'x', encrypted: true } } },
      /encrypted key "master"/,
    ],
    ['a key without a value', { 'f.json': { keys: [{ name: 'default' }] } }, /f\.json/],
    ['not JSON', { 'host.json': '{' }, /host\.json/],
  ]
  it.each(badStores)('refuses a secret store with %s', async (_name, files, message) => {
    const dir = await tmpDir()
    await mkdir(dir, { recursive: true })
    for (const [name, content] of Object.entries(files)) {
      await writeFile(
        join(dir, name),
        typeof content === 'string' ? content : JSON.stringify(content),
      )
    }
    await expect(readSecretsDir(dir)).rejects.toMatchObject({ code: 'KEYS_INVALID', message })
  })
})
