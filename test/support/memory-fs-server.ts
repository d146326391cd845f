import { FuseKeeper } from '../../host/fuse/fuse-keeper.ts'
import { adoptFuse, mountFuse } from '../../host/fuse/fuse-session.ts'
import { memoryFs } from './memory-fs.ts'

/**
 * `memory-fs-server.ts DIR KEEPER_SOCKET mount|adopt [stall]`: serves memoryFs on DIR with its
 * connection kept by the keeper of KEEPER_SOCKET, either mounting it or adopting what a dead
 * server left there; prints "serving <how>" and serves until killed (SIGTERM unmounts).
 */
const [dir, socket, how, stall] = process.argv.slice(2) as [string, string, string, string?]
const keeper = await FuseKeeper.open(socket)
const ops = memoryFs({
  stall: stall === 'stall',
  onStall: () => process.stdout.write('a read stalled\n'),
})
const keep = { keeper, data: { test: 'memory-fs' } }
let session
if (how === 'adopt') {
  const [kept] = await keeper.orphans(dir)
  if (!kept) throw new Error(`nothing kept for ${dir}`)
  session = await adoptFuse(kept, ops, { name: 'thaw-test', keep })
} else {
  session = await mountFuse(dir, ops, { name: 'thaw-test', keep })
}
process.stdout.write(`serving ${how} resendError=${session.info.resendError}\n`)
process.on('SIGTERM', () => void session.close().then(() => process.exit(0)))
