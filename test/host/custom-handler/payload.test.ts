import { describe, expect, it } from 'vitest'
import {
  parseCustomHandlerConfig,
  expandArguments,
  parsePayloadResponse,
  toHttpAnswer,
  toPayloadHttpRequest,
  toPayloadInvoke,
  type FunctionJsonFunction,
} from '../../../host/custom-handler/index.ts'

const fn = (httpOutput: string | undefined = 'res'): FunctionJsonFunction => ({
  name: 'hello',
  trigger: 'httpTrigger',
  methods: null,
  route: null,
  authLevel: 'anonymous',
  servable: true,
  bindings: {},
  triggerName: 'req',
  httpOutput,
  httpInAndOut: true,
  disabled: false,
})

function request(init: {
  method?: string
  url?: string
  headers?: Record<string, string>
  body?: Buffer
}) {
  return {
    method: init.method ?? 'GET',
    url: new URL(init.url ?? 'http://localhost:7071/api/hello/42?name=Ada&x=1&x=2'),
    headers: new Headers(init.headers ?? {}),
    body: init.body ?? Buffer.alloc(0),
    params: { id: '42', opt: null },
  }
}

describe('the custom handler payload protocol', () => {
  it("wraps an HTTP request the way Azure's host does", () => {
    const now = new Date('2025-01-02T03:04:05Z')
    const payload = toPayloadHttpRequest(
      fn(),
      request({
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'content-length': '5', accept: 'a, b' },
        body: Buffer.from('hello'),
      }),
      now,
    )
    expect(payload.Data).toEqual({
      req: {
        Url: 'http://localhost:7071/api/hello/42?name=Ada&x=1&x=2',
        Method: 'POST',
        Query: { name: 'Ada', x: '1,2' },
        Headers: { accept: ['a', 'b'], 'content-length': ['5'], 'content-type': ['text/plain'] },
        Params: { id: '42', opt: null },
        Identities: [],
        Body: 'hello',
      },
    })
    expect(payload.Metadata).toEqual({
      id: '"42"', // route values are JSON-encoded strings in Metadata, as the host serializes them
      Query: { name: 'Ada', x: '1,2' },
      Headers: { accept: 'a, b', 'content-length': '5', 'content-type': 'text/plain' },
      sys: {
        MethodName: 'hello',
        UtcNow: '2025-01-02T03:04:05.000Z',
        RandGuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      },
    })
  })

  // How the body travels, with the rule each case shows.
  const bodies: [string, Record<string, string>, Buffer, unknown][] = [
    [
      'text is a string',
      { 'content-type': 'application/json', 'content-length': '7' },
      Buffer.from('{"a":1}'),
      '{"a":1}',
    ],
    [
      'octet-stream is base64',
      { 'content-type': 'application/octet-stream', 'content-length': '3' },
      Buffer.from([0, 1, 255]),
      'AAH/',
    ],
    [
      'multipart is base64',
      { 'content-type': 'multipart/form-data; boundary=x', 'content-length': '2' },
      Buffer.from('ab'),
      'YWI=',
    ],
    [
      'no Content-Length, no Body (the host reads ContentLength)',
      {},
      Buffer.from('lost'),
      undefined,
    ],
  ]
  it.each(bodies)('body: %s', (_rule, headers, body, expected) => {
    const req = toPayloadHttpRequest(fn(), request({ method: 'POST', headers, body })).Data.req as {
      Body?: unknown
    }
    expect(req.Body).toEqual(expected)
  })

  it('passes a non-HTTP input under the trigger name', () => {
    expect(toPayloadInvoke(fn(), { n: 1 }).Data).toEqual({ req: { n: 1 } })
  })

  // Handler answers → HTTP responses (HOST HttpBinding.ParseResponseObject rules).
  const answers: [
    string,
    string,
    string | undefined,
    { status: number; body: string; type?: string; extra?: [string, string] },
  ][] = [
    [
      'statusCode, headers and body',
      '{"Outputs":{"res":{"statusCode":201,"headers":{"x-a":"1"},"body":"made"}}}',
      'res',
      { status: 201, body: 'made', type: 'text/plain; charset=utf-8', extra: ['x-a', '1'] },
    ],
    [
      'keys in any case; statusCode wins over status',
      '{"outputs":{"RES":{"Status":404,"StatusCode":"202","Body":"ok"}}}',
      'res',
      { status: 202, body: 'ok' },
    ],
    [
      'an object body is JSON',
      '{"Outputs":{"res":{"body":{"a":1}}}}',
      'res',
      { status: 200, body: '{"a":1}', type: 'application/json; charset=utf-8' },
    ],
    [
      'without a body key the whole value is the body',
      '{"Outputs":{"res":{"status":500}}}',
      'res',
      { status: 200, body: '{"status":500}' },
    ],
    [
      'a string output is the body',
      '{"Outputs":{"res":"plain"}}',
      'res',
      { status: 200, body: 'plain' },
    ],
    [
      '$return takes ReturnValue',
      '{"ReturnValue":{"body":"from return","status":203}}',
      '$return',
      { status: 203, body: 'from return' },
    ],
    ['no output is an empty 200', '{"Outputs":{}}', 'res', { status: 200, body: '' }],
  ]
  it.each(answers)('answer: %s', (_rule, text, output, expected) => {
    const answer = toHttpAnswer(fn(output), parsePayloadResponse(text))
    expect(answer.status).toBe(expected.status)
    expect(answer.body.toString()).toBe(expected.body)
    if (expected.type) expect(answer.headers).toContainEqual(['content-type', expected.type])
    if (expected.extra) expect(answer.headers).toContainEqual(expected.extra)
  })

  it('reads Logs and refuses answers that are not the protocol', () => {
    expect(parsePayloadResponse('{"Logs":["a",{"b":1}]}').logs).toEqual(['a', '{"b":1}'])
    expect(() => parsePayloadResponse('[1]')).toThrow(/JSON object/)
    expect(() => parsePayloadResponse('{"Outputs":[]}')).toThrow(/Outputs/)
    expect(() => parsePayloadResponse('nope')).toThrow(/invalid JSON/)
  })

  it('reads host.json customHandler, expanding %SETTING% in arguments', () => {
    const config = parseCustomHandlerConfig({
      version: '2.0',
      customHandler: {
        description: {
          defaultExecutablePath: 'app',
          arguments: ['--db', '%DB%'],
          workingDirectory: 'bin',
        },
        enableForwardingHttpRequest: true,
        port: '9000',
      },
    })
    expect(config).toEqual({
      executable: 'app',
      arguments: ['--db', '%DB%'],
      workingDirectory: 'bin',
      enableForwardingHttpRequest: true,
      port: 9000,
    })
    expect(expandArguments(config!.arguments, { DB: 'x' })).toEqual(['--db', 'x'])
    expect(parseCustomHandlerConfig({ version: '2.0' })).toBeUndefined()
    expect(() => parseCustomHandlerConfig({ customHandler: { description: {} } })).toThrow(
      expect.objectContaining({ code: 'CUSTOM_HANDLER_CONFIG_INVALID' }),
    )
  })
})
