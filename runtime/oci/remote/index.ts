// The public surface of the registry client; the rest of remote/ is its inside.
export type { Credentials, CredentialsOption } from './auth.ts'
export type { BlobSource, PushBlobOptions, PushedBlob } from './blob-upload.ts'
export type { BlobResponse } from './blobs.ts'
export type { ExtensionRequest } from './extension.ts'
export { pullImage, pushImage, type PushProgress } from './image-transfer.ts'
export type { CallOptions, FetchedManifest, ManifestHead } from './manifests.ts'
export { referrerDescriptor, referrersTag } from './referrers.ts'
export {
  createRegistryClient,
  type RegistryClient,
  type RegistryClientOptions,
} from './registry-client.ts'
export { readBody, type RegistryResponse } from './response.ts'
export type { RetryOptions } from './retry.ts'
export type { PageOptions } from './tags.ts'
