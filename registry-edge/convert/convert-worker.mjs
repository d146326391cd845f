// Entry point of a conversion worker thread. A worker starts in plain Node, without the tsx loader
// of its parent (loader hooks are per thread, and `--import` in a Worker's execArgv is not applied
// to it on Node 20), so it registers tsx itself before importing the TypeScript body.
import { register } from 'tsx/esm/api'

register()
await import('./convert-worker.ts')
