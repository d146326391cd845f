// The benchmark's function. Its startup reads a small part of the image, as real functions do:
// Debian's express (from /usr/share/nodejs) when the image has it, and Python's stdlib HTTP and
// JSON stack (a python3 child, as a function shelling out to a helper would) when python3 is
// there. The small image has neither: it starts node and the app only.
const { app } = require('@azure/functions')
const { execFileSync } = require('node:child_process')
const { existsSync } = require('node:fs')

const startup = { express: null, python: null }
try {
  startup.express = require('express/package.json').version
  require('express')
} catch {
  // not in this image
}
if (existsSync('/usr/bin/python3')) {
  startup.python = execFileSync(
    '/usr/bin/python3',
    ['-c', 'import json, http.server, email.parser; print(json.dumps("ok"))'],
    { encoding: 'utf8' },
  ).trim()
}

app.http('hello', {
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async () => ({ jsonBody: { hello: 'world', startup } }),
})
