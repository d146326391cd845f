import {
  app,
  type HttpRequest,
  type HttpResponseInit,
  type InvocationContext,
} from '@azure/functions'

/** Greets by name: from `?name=`, else the request body, else "world". */
export async function hello(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  context.log(`Http function processed request for url "${request.url}"`)
  const name = request.query.get('name') || (await request.text()) || 'world'
  return { body: `Hello, ${name}!` }
}

app.http('hello', {
  methods: ['GET', 'POST'],
  authLevel: 'anonymous',
  handler: hello,
})
