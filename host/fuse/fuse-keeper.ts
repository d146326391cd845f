import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync } from 'node:fs'
import { constants } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processStartTime } from '../sandbox/instance-registry.ts'
import { loadAddon, type FuseInfo } from './fuse-session.ts'

/**
 * The client of thaw-fuse-keeper (native/thaw_fuse_keeper.c): a small process, started detached
 * and shared by every thaw process of the machine, that holds the /dev/fuse descriptors of their
 * mounts. While it holds a session's descriptors the kernel keeps the connection up even if the
 * process serving it dies: processes inside the mount wait instead of failing with ENOTCONN, and
 * the next server takes the descriptors back (`adoptFuse`) and answers them.
 *
 * @example
 *   const keeper = await FuseKeeper.open()
 *   const session = await mountFuse(dir, fs, { name, keep: { keeper, data: { image } } })
 *   // after a SIGKILL, the restarted process:
 *   for (const kept of keeper.orphans()) await adoptFuse(kept, fsFor(kept.data), { name, keep: { keeper, data: kept.data } })
 */
export const DEFAULT_KEEPER_SOCKET = '/run/thaw/fuse-keeper.sock'
const KEEPER_BIN = fileURLToPath(new URL('./build/Release/thaw-fuse-keeper', import.meta.url))

/** What a keeper holds for one session besides its descriptors. */
export interface KeptState {
  dir: string
  info: FuseInfo
  /** The process serving it (an entry whose owner is alive is never adopted by another). */
  owner: { pid: number; startTime: string }
  /** The server's own description of what is mounted (enough to serve it again). */
  data: unknown
}

export interface KeptSession extends KeptState {
  /** The connection (/dev/fuse) and the passthrough bookkeeping (a memfd), now ours. */
  fds: [fuse: number, io: number]
}

export class FuseKeeper {
  private constructor(
    readonly socket: string,
    readonly owner: KeptState['owner'],
  ) {}

  /** Connects to the keeper of `socket`, starting it if none runs. */
  static async open(socket = DEFAULT_KEEPER_SOCKET): Promise<FuseKeeper> {
    const owner = { pid: process.pid, startTime: (await processStartTime(process.pid)) ?? '' }
    const keeper = new FuseKeeper(socket, owner)
    await keeper.#start()
    return keeper
  }

  /**
   * Hands the keeper a copy of the session's descriptors (replacing what it held for `dir`). A
   * keeper that held nothing for a minute has exited: it is started again.
   */
  async store(dir: string, fds: readonly number[], state: Omit<KeptState, 'owner' | 'dir'>): Promise<void> {
    const full: KeptState = { dir, owner: this.owner, ...state }
    await this.#start()
    this.#call(`store\n${dir}\n${JSON.stringify(full)}`, fds)
  }

  /** The keeper lets go of `dir`'s descriptors (before a deliberate unmount). */
  drop(dir: string): void {
    try {
      this.#call(`drop\n${dir}`, [])
    } catch (err) {
      // A keeper that is gone (killed with its process group, say) holds nothing to let go of.
      const errno = (err as { errno?: number }).errno
      if (errno !== constants.errno.ENOENT && errno !== constants.errno.ECONNREFUSED) throw err
    }
  }

  /**
   * Sessions whose serving process is gone, under `root`: their descriptors are this process's now
   * (adopt them, or close them); the keeper still holds its own copies.
   */
  async orphans(root: string): Promise<KeptSession[]> {
    const out: KeptSession[] = []
    for (const answer of this.#call('list', [])) {
      const [kind, , text] = splitOnce(answer.text)
      const state = kind === 'entry' ? parseState(text) : undefined
      const mine =
        state &&
        answer.fds.length === 2 &&
        (state.dir === root || state.dir.startsWith(`${root}/`)) &&
        (await processStartTime(state.owner.pid)) !== state.owner.startTime
      if (mine) out.push({ ...state, fds: answer.fds as [number, number] })
      else for (const fd of answer.fds) closeSync(fd)
    }
    return out
  }

  /** Starts the keeper of this socket unless one answers. */
  async #start(): Promise<void> {
    if (this.#ping()) return
    if (!existsSync(KEEPER_BIN)) throw new Error(`${KEEPER_BIN} is missing: run scripts/install.sh`)
    mkdirSync(dirname(this.socket), { recursive: true, mode: 0o700 })
    spawn(KEEPER_BIN, [this.socket], { detached: true, stdio: 'ignore' }).unref()
    for (let waited = 0; waited < 5_000; waited += 10) {
      await new Promise((r) => setTimeout(r, 10))
      if (this.#ping()) return
    }
    throw new Error(`thaw-fuse-keeper did not start on ${this.socket}`)
  }

  #ping(): boolean {
    try {
      return this.#call('ping', []).length > 0
    } catch {
      return false
    }
  }

  #call(message: string, fds: readonly number[]): { text: string; fds: number[] }[] {
    const answers = loadAddon().keeperCall(this.socket, message, [...fds])
    const last = answers.at(-1)?.text ?? ''
    if (last.startsWith('error')) throw new Error(`thaw-fuse-keeper: ${last.slice(6)}`)
    return answers
  }
}

/** "entry\n<name>\n<state>" → ['entry', name, state] (the state may hold newlines). */
function splitOnce(text: string): [string, string, string] {
  const a = text.indexOf('\n')
  const b = a < 0 ? -1 : text.indexOf('\n', a + 1)
  if (b < 0) return [text, '', '']
  return [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)]
}

function parseState(text: string): KeptState | undefined {
  try {
    const s = JSON.parse(text) as KeptState
    return typeof s.dir === 'string' && typeof s.owner?.pid === 'number' && s.info ? s : undefined
  } catch {
    return undefined
  }
}
