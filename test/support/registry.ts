import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, startProcess, type TestProcess } from './processes.ts'
import { tmpDir } from './tmp.ts'

/**
 * A real CNCF distribution registry (Debian's docker-registry, v2.8) on a loopback port, with its
 * own storage, for tests. Every request it serves is logged, so tests can count them.
 */
export interface TestRegistry {
  url: string
  /** Its storage; another registry started on it (`dataDir`) serves the same content. */
  dataDir: string
  /** host:port, as skopeo wants it */
  address: string
  process: TestProcess
  /** Requests seen so far, as "METHOD /path" strings, from distribution's access log. */
  requests(): string[]
  stop(): Promise<void>
}

/**
 * `dataDir`: serve an existing storage (a stopped registry's). `readOnly`: distribution's
 * maintenance read-only mode, in which every push is answered 405 UNSUPPORTED.
 */
export async function startDistribution(
  options: { dataDir?: string; readOnly?: boolean } = {},
): Promise<TestRegistry> {
  const dir = await tmpDir('thaw-distribution-')
  const dataDir = options.dataDir ?? join(dir, 'data')
  const port = await freePort()
  const config = join(dir, 'config.yml')
  const readOnly = options.readOnly
    ? ['  maintenance:', '    readonly:', '      enabled: true']
    : []
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  accesslog:',
      '    disabled: false',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dataDir}`,
      '  delete:',
      '    enabled: true',
      ...readOnly,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  )
  const process = startProcess('docker-registry', ['serve', config])
  await process.waitFor(/listening on 127\.0\.0\.1/)
  return {
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    dataDir,
    process,
    requests: () =>
      [...process.output().matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) ([^ ]+) HTTP/g)].map(
        (m) => `${m[1]} ${m[2]}`,
      ),
    stop: () => process.stop(),
  }
}
