export * from './bundle.ts'
export * from './streaming-artifact.ts'
export * from './thaw-api.ts'
