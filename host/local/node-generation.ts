import { LocalRunnerError } from './errors.ts'
import { createRefGate, lineSink, type EventSink, type Generation } from './generation.ts'
import {
  createWorkerClient,
  spawnWorker,
  WorkerStartError,
  type LocalWorker,
} from '../worker/index.ts'

export interface NodeGenerationOptions {
  id: number
  workerPath: string
  scriptRoot: string
  env: Record<string, string>
  socketDir: string
  /** Load TypeScript sources through tsx's loader. */
  tsxLoader: string | undefined
  main: string | undefined
  startTimeoutMs: number
  emit: EventSink
}

/** A Node.js app generation: the bundled worker as a child process, called over its unix socket. */
export async function startNodeGeneration(options: NodeGenerationOptions): Promise<Generation> {
  const { id, emit } = options
  const stdout = lineSink((line) =>
    emit({ type: 'output', generation: id, stream: 'stdout', line }),
  )
  const stderr = lineSink((line) =>
    emit({ type: 'output', generation: id, stream: 'stderr', line }),
  )
  let worker: LocalWorker
  try {
    worker = await spawnWorker({
      workerPath: options.workerPath,
      scriptRoot: options.scriptRoot,
      env: options.env,
      socketDir: options.socketDir,
      name: `g${id}`,
      nodeArgs: [
        '--enable-source-maps',
        ...(options.tsxLoader ? ['--import', options.tsxLoader] : []),
      ],
      main: options.main,
      startTimeoutMs: options.startTimeoutMs,
      onOutput: (stream, chunk) => (stream === 'stdout' ? stdout : stderr)(chunk),
      onMessage: (m) => {
        if (m.type === 'log') emit({ ...m, generation: id })
        else if (m.type === 'invocation-start' || m.type === 'invocation-end')
          emit({ ...m, generation: id })
      },
    })
  } catch (err) {
    if (err instanceof WorkerStartError) {
      const detail = err.kind === 'fatal' ? err.message : `${err.message}\n${err.output.trim()}`
      throw new LocalRunnerError('WORKER_START_FAILED', detail, { cause: err })
    }
    throw err
  }
  const client = createWorkerClient(worker.ready.listen)
  const gate = createRefGate()
  const exited = worker.exited.then((code) => {
    if (!gate.closed) emit({ type: 'generation-exited', generation: id, code })
  })
  let closing: Promise<void> | undefined
  return {
    id,
    kind: 'node',
    functions: worker.ready.functions,
    problems: [],
    streaming: worker.ready.streaming,
    model: worker.ready.model,
    acquire: () => gate.acquire(),
    dispatch: (input) => client.dispatch(input),
    invoke: (name, input, invocationId, signal) => client.invoke(name, input, invocationId, signal),
    close(graceMs) {
      closing ??= (async () => {
        await gate.drain(graceMs)
        await client.close()
        await worker.stop(graceMs)
      })()
      return closing
    },
    exited,
  }
}
