// Entry point of a frame decoder thread. A worker starts in plain Node, without the tsx loader of
// its parent (loader hooks are per thread on Node 20), so it registers tsx itself before
// importing the TypeScript body (as registry-edge/convert/convert-worker.mjs does).
import { register } from 'tsx/esm/api'

register()
await import('./frame-decoder-worker.ts')
