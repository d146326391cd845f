import { accessSync, constants, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildNodeBase } from '../../host/build/node-base.ts'
import type { BaseImage } from '../../host/build/base-image.ts'
import { createSandbox, type Sandbox, type SandboxOptions } from '../../host/sandbox/sandbox.ts'
import type { SandboxNode, SpecializeOptions } from '../../host/sandbox/sandbox-node.ts'
import type { NodeExit, NodeProcess } from '../../host/sandbox/node-handle.ts'
import { buildUserNamespaceHelper } from '../../host/sandbox/user-namespace.ts'
import { onCleanup } from './cleanup.ts'
import { tmpDir } from './tmp.ts'

/** Node sandbox e2e tests run as root with overlayfs, iproute2, nft and runc or crun; else they skip, saying why. */
export const sandboxUnavailable: string | false = whyNoSandbox()

function whyNoSandbox(): string | false {
  if (process.getuid?.() !== 0) return 'sandbox tests need root (namespaces, mounts, runc)'
  if (!/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8')))
    return 'no overlayfs in this kernel'
  for (const tool of ['ip', 'nft', 'mount', 'tar']) {
    if (!onPath(tool)) return `${tool} is not installed`
  }
  if (!onPath('runc') && !onPath('crun')) return 'neither runc nor crun is installed'
  return false
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** Where e2e tests keep the Node.js base they run nodes from (rebuilt when `node` changes). */
export const NODE_BASE_CACHE = '/var/tmp/thaw-cache/node-base-test'

let base: Promise<BaseImage> | undefined
export function nodeBase(): Promise<BaseImage> {
  base ??= buildNodeBase({ outDir: NODE_BASE_CACHE, gzip: false })
  return base
}

/**
 * A sandbox in a fresh state directory, closed (every node destroyed, its mounts undone) when the
 * file ends, before the directory is removed (test/support/cleanup.ts). Called from beforeAll.
 * The user namespace helper is built first if it is missing (scripts/install.sh builds it too).
 */
export async function testSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  await buildUserNamespaceHelper()
  const sandbox = await createSandbox({ stateDir: await tmpDir('thaw-sandbox-'), ...options })
  onCleanup('servers', () => sandbox.close())
  return sandbox
}

export interface NodeRun {
  node: SandboxNode
  exit: NodeExit
  stdout: string
  stderr: string
}

/** Runs `node -e script` in a fresh node from the Node.js base, to the end. */
export async function runNodeScript(
  sandbox: Sandbox,
  script: string,
  options: Partial<SpecializeOptions> = {},
): Promise<NodeRun> {
  const node = await sandbox.prepareNode()
  const proc = await node.specialize({
    lowerDir: (await nodeBase()).rootfs,
    imageConfig: { Cmd: ['node', '-e', script] },
    memoryBytes: 256 * 1024 * 1024,
    pids: 64,
    ...options,
  })
  const exit = await proc.exited
  return { node, exit, ...proc.output() }
}

/** The JSON object on the last line a node printed. */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const line = stdout.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line) as T
  } catch {
    throw new Error(`node did not print JSON; its output:\n${stdout}`)
  }
}

/** Resolves when the node's stdout matches `pattern`; rejects if it exits first. */
export function waitForOutput(proc: NodeProcess, pattern: RegExp): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = () => {
      if (!pattern.test(proc.output().stdout)) return false
      stop()
      resolve()
      return true
    }
    const stop = proc.onOutput(check)
    void proc.exited.then(() => {
      if (!check())
        reject(
          new Error(`node exited before printing ${pattern}:\n${JSON.stringify(proc.output())}`),
        )
    })
    check()
  })
}
