const { app } = require('@azure/functions')

/** Greets by name: from `?name=`, else the request body, else "world". */
app.http('hello', {
  methods: ['GET', 'POST'],
  authLevel: 'anonymous',
  handler: async (request, context) => {
    context.log(`Http function processed request for url "${request.url}"`)
    const name = request.query.get('name') || (await request.text()) || 'world'
    return { body: `Hello, ${name}!` }
  },
})
