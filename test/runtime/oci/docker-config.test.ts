import { describe, expect, it } from 'vitest'
import { parseDockerConfig } from '../../../runtime/oci/remote/docker-config.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')

describe('parseDockerConfig', () => {
  const lookup = parseDockerConfig({
    auths: {
      'edge.example:5000': { auth: b64('robot:pa:ss') },
      'https://index.docker.io/v1/': { username: 'hub', password: 'secret' },
      'https://reg.example/v2/': { auth: b64('r:1') },
      'broken.example': { auth: b64('no-colon') },
    },
  })

  it.each([
    ['edge.example:5000', { username: 'robot', password: 'pa:ss' }], // the password keeps its colons
    ['docker.io', { username: 'hub', password: 'secret' }], // Docker Hub under any of its names
    ['registry-1.docker.io', { username: 'hub', password: 'secret' }],
    ['reg.example', { username: 'r', password: '1' }], // a URL key is its host
    ['broken.example', undefined], // an auth without user:password is skipped
    ['other.example', undefined],
  ])('%s → %j', (host, expected) => {
    expect(lookup(host)).toEqual(expected)
  })

  it('rejects what is not a docker config with DOCKER_CONFIG_INVALID', () => {
    expect(() => parseDockerConfig({ auths: [] })).toThrow(
      expect.objectContaining({ code: 'DOCKER_CONFIG_INVALID' }),
    )
  })
})
