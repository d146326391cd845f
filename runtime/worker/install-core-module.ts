import Module from 'node:module'

export const CORE_MODULE_ID = '@azure/functions-core'

/**
 * Makes `require('@azure/functions-core')` return `api`, as the worker does
 * (src/setupCoreModule.ts). It must run before any app code: the library looks the module up once,
 * lazily, and caches a miss forever ("test mode"). The library's dist is CommonJS, so this also
 * covers ESM apps that `import { app } from '@azure/functions'`.
 */
export function installCoreModule(api: object): () => void {
  const proto = Module.prototype as unknown as { require: (id: string) => unknown }
  const original = proto.require
  proto.require = function (this: unknown, id: string) {
    if (id === CORE_MODULE_ID) return api
    // eslint-disable-next-line prefer-rest-params
    return original.apply(this, arguments as unknown as [string])
  }
  return () => {
    proto.require = original
  }
}
