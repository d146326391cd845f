import { describe, expect, it } from 'vitest'
import { isThawError } from '../../../runtime/errors.ts'
import { OciError, isOciError, isOciErrorCode } from '../../../runtime/oci/errors.ts'

describe('OciError', () => {
  it('renders the distribution-spec error body with code, message and detail', () => {
    const err = new OciError('BLOB_UNKNOWN', 'blob unknown to registry', {
      detail: { digest: 'x' },
    })
    expect(err.status).toBe(404)
    expect(err.toBody()).toEqual({
      errors: [
        { code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: 'x' } },
      ],
    })
  })

  it('omits detail when there is none', () => {
    expect(new OciError('DENIED', 'no').toBody()).toEqual({
      errors: [{ code: 'DENIED', message: 'no' }],
    })
  })

  it.each([
    // 4xx are the caller's fault and final
    ['MANIFEST_UNKNOWN', undefined, 404, 'user', false],
    ['UNAUTHORIZED', undefined, 401, 'user', false],
    // rate limiting is the caller's fault but worth retrying
    ['TOOMANYREQUESTS', undefined, 429, 'user', true],
    // 5xx are the system's fault and temporary
    ['UNAVAILABLE', undefined, 503, 'system', true],
    ['UNKNOWN', undefined, 500, 'system', true],
    // an explicit status overrides the code's usual one
    ['MANIFEST_INVALID', 413, 413, 'user', false],
  ] as const)(
    '%s (status %s) has status %i, fault %s, temporary %s',
    (code, status, want, fault, temporary) => {
      const err = new OciError(code, 'm', { status })
      expect(err.status).toBe(want)
      expect(err.fault).toBe(fault)
      expect(err.temporary).toBe(temporary)
      expect(isThawError(err, code)).toBe(true)
      expect(isOciError(err, code)).toBe(true)
    },
  )

  it('knows the spec codes and nothing else', () => {
    expect(isOciErrorCode('NAME_UNKNOWN')).toBe(true)
    expect(isOciErrorCode('PAGINATION_NUMBER_INVALID')).toBe(false)
    expect(isOciErrorCode('toString')).toBe(false)
  })
})
