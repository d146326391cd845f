import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/**
 * A small CRI client (runtime.v1, Kubernetes' api.proto vendored in proto/) on containerd's
 * socket: what the kubelet asks of containerd's CRI plugin to pull an image and run a pod.
 * Messages are api.proto's, field names as written there (snake_case), enums by name.
 */
export interface CriClient {
  /** PullImage; resolves with the image's reference by digest as containerd reports it. */
  pullImage(image: string, timeoutMs?: number): Promise<string>
  /** Runs `command` of `image` (pulled) as the only container of a pod on the node's network. */
  runPod(pod: CriPod): Promise<CriPodRun>
  close(): void
}

export interface CriPod {
  name: string
  image: string
  command: string[]
  /** The pod's log directory (the kubelet's /var/log/pods/<pod>). */
  logDirectory: string
  timeoutMs?: number
}

export interface CriPodRun {
  exitCode: number
  /** The container's stdout and stderr as the CRI plugin logged them, lines joined again. */
  log: string
  /** The log file (CRI format), under the pod's log directory. */
  logPath: string
}

type Call = (method: string, request: object, timeoutMs?: number) => Promise<any>

const PROTO = 'k8s.io/cri-api/pkg/apis/runtime/v1/api.proto'

export function criClient(socket: string): CriClient {
  const definition = protoLoader.loadSync(PROTO, {
    includeDirs: [join(import.meta.dirname, 'proto')],
    keepCase: true,
    defaults: true,
    enums: String,
    longs: String,
  })
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: Record<'RuntimeService' | 'ImageService', grpc.ServiceClientConstructor> }
  }
  const address = `unix://${socket}`
  const insecure = grpc.credentials.createInsecure()
  const clients = [
    new pkg.runtime.v1.RuntimeService(address, insecure),
    new pkg.runtime.v1.ImageService(address, insecure),
  ]
  const caller =
    (client: grpc.Client): Call =>
    (method, request, timeoutMs = 60_000) =>
      new Promise((resolve, reject) =>
        (client as unknown as Record<string, Function>)[method]!.call(
          client,
          request,
          { deadline: Date.now() + timeoutMs },
          (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
        ),
      )
  const runtime = caller(clients[0]!)
  const image = caller(clients[1]!)
  return {
    pullImage: async (reference, timeoutMs = 120_000) =>
      (await image('PullImage', { image: { image: reference } }, timeoutMs)).image_ref,
    runPod: (pod) => runPod(runtime, pod),
    close: () => clients.forEach((c) => c.close()),
  }
}

/**
 * RunPodSandbox (host network, so no CNI plugin is needed; the sandbox image is containerd's
 * `sandbox_image`), CreateContainer, StartContainer, ContainerStatus until it exits, its log
 * file; the pod is stopped and removed afterwards, also when a step fails.
 */
async function runPod(runtime: Call, pod: CriPod): Promise<CriPodRun> {
  const timeoutMs = pod.timeoutMs ?? 120_000
  const podConfig = {
    metadata: { name: pod.name, uid: `${pod.name}-uid`, namespace: 'default', attempt: 0 },
    // No hostname: a pod on the node's network shares its UTS namespace (the kubelet sets none).
    log_directory: pod.logDirectory,
    linux: { security_context: { namespace_options: { network: 'NODE' } } },
  }
  const { pod_sandbox_id: podId } = await runtime('RunPodSandbox', { config: podConfig }, timeoutMs)
  try {
    const { container_id: id } = await runtime(
      'CreateContainer',
      {
        pod_sandbox_id: podId,
        config: {
          metadata: { name: 'main', attempt: 0 },
          image: { image: pod.image },
          command: pod.command,
          log_path: 'main.log',
        },
        sandbox_config: podConfig,
      },
      timeoutMs,
    )
    await runtime('StartContainer', { container_id: id }, timeoutMs)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const { status } = await runtime('ContainerStatus', { container_id: id })
      if (status.state === 'CONTAINER_EXITED')
        return {
          exitCode: status.exit_code,
          log: parseCriLog(await readFile(status.log_path, 'utf8')),
          logPath: status.log_path,
        }
      if (Date.now() > deadline) throw new Error(`container ${id} still ${status.state}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    await runtime('StopPodSandbox', { pod_sandbox_id: podId }, timeoutMs)
    await runtime('RemovePodSandbox', { pod_sandbox_id: podId }, timeoutMs)
  }
}

/**
 * The CRI log format (kubelet's pkg/kubelet/kuberuntime/logs): `<RFC 3339 time> <stream>
 * <P|F> <content>` per line; P is a part of a longer line, F ends it.
 */
export function parseCriLog(text: string): string {
  let out = ''
  for (const line of text.split('\n').filter(Boolean)) {
    const match = /^\S+ (?:stdout|stderr) ([PF]) (.*)$/.exec(line)
    if (match === null) throw new Error(`not a CRI log line: ${line}`)
    out += match[1] === 'F' ? `${match[2]}\n` : match[2]
  }
  return out
}
