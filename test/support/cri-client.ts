import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/**
 * A small CRI client (runtime.v1, fixtures/cri-image-service.proto) on containerd's socket: what
 * the kubelet does to pull an image through containerd's CRI plugin.
 */
export interface CriClient {
  /** PullImage; resolves with the image's reference by digest as containerd reports it. */
  pullImage(image: string, timeoutMs?: number): Promise<string>
  close(): void
}

export function criClient(socket: string): CriClient {
  const definition = protoLoader.loadSync(
    join(import.meta.dirname, 'fixtures/cri-image-service.proto'),
    { keepCase: true, defaults: true },
  )
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { ImageService: grpc.ServiceClientConstructor } }
  }
  const client = new pkg.runtime.v1.ImageService(
    `unix://${socket}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    PullImage(
      request: unknown,
      options: grpc.CallOptions,
      callback: (err: grpc.ServiceError | null, res?: { image_ref: string }) => void,
    ): void
  }
  return {
    pullImage: (image, timeoutMs = 120_000) =>
      new Promise((resolve, reject) =>
        client.PullImage({ image: { image } }, { deadline: Date.now() + timeoutMs }, (err, res) =>
          err ? reject(err) : resolve(res!.image_ref),
        ),
      ),
    close: () => client.close(),
  }
}
