// Runs the app as `thaw start` would, in-process for the test: the real @azure/functions
// library behind thaw's worker, reached over HTTP with dispatchFetch().
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createRunner, type Runner } from 'thaw/local'

let runner: Runner

before(async () => {
  runner = createRunner({ scriptRoot: fileURLToPath(new URL('..', import.meta.url)) })
  await runner.ready
})

after(() => runner.dispose())

test('greets by the name in the query', async () => {
  const res = await runner.dispatchFetch('/api/hello?name=Ada')
  assert.equal(res.status, 200)
  assert.equal(await res.text(), 'Hello, Ada!')
})

test('greets by the name in a POST body', async () => {
  const res = await runner.dispatchFetch('/api/hello', { method: 'POST', body: 'Grace' })
  assert.equal(await res.text(), 'Hello, Grace!')
})

test('greets the world by default, and only answers GET and POST', async () => {
  assert.equal(await (await runner.dispatchFetch('/api/hello')).text(), 'Hello, world!')
  assert.equal((await runner.dispatchFetch('/api/hello', { method: 'DELETE' })).status, 405)
})
