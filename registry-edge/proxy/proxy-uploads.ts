import { createReadStream } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import type { Digest } from '../../runtime/oci/index.ts'
import type { RegistryClient } from '../../runtime/oci/remote/index.ts'
import type { BlobInfo, UploadChunk, UploadStatus } from '../backend/registry-backend.ts'
import { AtomicFiles } from '../store/atomic-files.ts'
import { StoreLayout } from '../store/store-layout.ts'
import { UploadSessions, type UploadSessionsOptions } from '../store/upload-sessions.ts'

/**
 * Blob pushes through a proxy edge. A client's upload session (POST, PATCHes, PUT) is buffered
 * on the edge's disk with the origin store's session code (`uploads/<id>/data`, in order, all or
 * nothing per chunk, surviving restarts); the closing PUT verifies the bytes against the digest
 * and only then pushes the blob to the upstream (monolithic or chunked, as the registry client
 * chooses), so the upstream never sees a blob that fails verification, and the client's 201
 * means the upstream has it. `onPushed` gets the verified file before it is removed (the proxy
 * seeds its cache with it).
 */
export class ProxyUploads {
  readonly #client: RegistryClient
  readonly #sessions: UploadSessions
  readonly #layout: StoreLayout

  private constructor(client: RegistryClient, layout: StoreLayout, sessions: UploadSessions) {
    this.#client = client
    this.#layout = layout
    this.#sessions = sessions
  }

  /**
   * Sessions live under `root/uploads` (broken and idle ones left by a previous process are
   * removed); `root/tmp` is emptied.
   */
  static async open(
    root: string,
    client: RegistryClient,
    options: UploadSessionsOptions = {},
  ): Promise<ProxyUploads> {
    const layout = new StoreLayout(root)
    await rm(layout.tmpDir, { recursive: true, force: true })
    await mkdir(layout.tmpDir, { recursive: true })
    const sessions = await UploadSessions.open(layout, new AtomicFiles(layout), options)
    return new ProxyUploads(client, layout, sessions)
  }

  start(repository: string, owner?: string): Promise<UploadStatus> {
    return this.#sessions.start(repository, owner)
  }

  status(repository: string, id: string): Promise<UploadStatus> {
    return this.#sessions.status(repository, id)
  }

  append(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus> {
    return this.#sessions.append(repository, id, chunk)
  }

  async finish(
    repository: string,
    id: string,
    digest: Digest,
    onPushed: (file: string, size: number) => Promise<void>,
  ): Promise<BlobInfo> {
    const size = await this.#sessions.finish(repository, id, digest, async (file) => {
      const { size } = await stat(file)
      await this.#client.pushBlob(repository, () => createReadStream(file), { digest, size })
      await onPushed(file, size)
    })
    return { digest, size }
  }

  cancel(repository: string, id: string): Promise<void> {
    return this.#sessions.cancel(repository, id)
  }

  /** Stops the idle-session sweep. Idempotent. */
  close(): Promise<void> {
    return this.#sessions.close()
  }
}
