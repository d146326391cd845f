import { describe, expect, it } from 'vitest'
import {
  DEFAULT_PATH,
  mergeEnv,
  processArgs,
  workingDir,
} from '../../../host/sandbox/node-process.ts'

describe('mergeEnv', () => {
  it('starts from a default PATH and HOME, then the image Env, then the app settings', () => {
    const env = mergeEnv(
      ['PATH=/image/bin', 'A=image', 'B=image', 'EMPTY='],
      { B: 'app', C: 'app' },
      { home: '/home/app' },
    )
    expect(env).toEqual([
      'PATH=/image/bin',
      'HOME=/home/app',
      'A=image',
      'B=app',
      'EMPTY=',
      'C=app',
    ])
  })

  it('keeps the default PATH when the image has none, and lets the image set HOME', () => {
    expect(mergeEnv(['HOME=/data'], {}, { home: '/root', hostname: 'n1' })).toEqual([
      `PATH=${DEFAULT_PATH}`,
      'HOME=/data',
      'HOSTNAME=n1',
    ])
  })

  it.each([
    // no '=' at all: not a variable
    ['NOEQUALS'],
    // an empty name
    ['=value'],
  ])('skips the malformed image entry %j', (entry) => {
    expect(mergeEnv([entry], {}, { home: '/' })).toEqual([`PATH=${DEFAULT_PATH}`, 'HOME=/'])
  })

  it('keeps values with = in them', () => {
    expect(mergeEnv(['X=a=b'], { Y: 'c=d' }, { home: '/' })).toContain('X=a=b')
    expect(mergeEnv(['X=a=b'], { Y: 'c=d' }, { home: '/' })).toContain('Y=c=d')
  })

  it.each([
    // a name with '='
    [{ 'A=B': 'x' }],
    // an empty name
    [{ '': 'x' }],
    // a NUL byte cannot pass execve
    [{ A: 'x\0y' }],
  ])('refuses the app setting %j', (settings) => {
    expect(() => mergeEnv([], settings, { home: '/' })).toThrow(/invalid app setting/)
  })
})

describe('processArgs', () => {
  it('is Entrypoint then Cmd, or the override alone', () => {
    expect(processArgs({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'] })).toEqual([
      '/bin/sh',
      '-c',
      'echo hi',
    ])
    expect(processArgs({ Cmd: ['node'] })).toEqual(['node'])
    expect(processArgs({ Entrypoint: ['e'], Cmd: ['c'] }, ['node', 'worker.js'])).toEqual([
      'node',
      'worker.js',
    ])
    expect(processArgs({ Entrypoint: null, Cmd: ['x'] })).toEqual(['x'])
  })

  it.each([[{}], [{ Cmd: [] }], [{ Entrypoint: null, Cmd: null }], [{ Cmd: [''] }]])(
    'refuses %j: nothing to run',
    (config) => {
      expect(() => processArgs(config)).toThrow(/no Entrypoint or Cmd/)
    },
  )
})

describe('workingDir', () => {
  it.each([
    [undefined, '/'],
    ['', '/'],
    ['/app', '/app'],
    ['app/', '/app'],
    ['/a/../b', '/b'],
  ])('%j → %s', (dir, expected) => {
    expect(workingDir({ WorkingDir: dir })).toBe(expected)
  })
})
