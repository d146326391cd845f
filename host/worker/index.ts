export { listenControl, type ControlServer } from './control-server.ts'
export {
  createWorkerClient,
  WorkerCallError,
  type DispatchInput,
  type DispatchOutput,
  type WorkerClient,
} from './worker-client.ts'
export {
  spawnWorker,
  WorkerStartError,
  type LocalWorker,
  type SpawnWorkerOptions,
} from './spawn-worker.ts'
