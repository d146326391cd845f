import { ThawError } from '../../runtime/errors.ts'
import { readFileInRoot } from './read-file-in-root.ts'

export interface ImageUser {
  uid: number
  gid: number
  /** Groups that list the user as a member in the image's /etc/group (not the primary one). */
  additionalGids: number[]
  /** The user's home from /etc/passwd, else `/` (what Docker sets HOME to). */
  home: string
}

interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}

interface GroupEntry {
  name: string
  gid: number
  members: string[]
}

/** passwd(5) lines `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (line.startsWith('#') || f.length < 7 || !isId(f[2]!) || !isId(f[3]!)) continue
    entries.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! || '/' })
  }
  return entries
}

/** group(5) lines `name:password:gid:member,member`; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (line.startsWith('#') || f.length < 4 || !isId(f[2]!)) continue
    entries.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) })
  }
  return entries
}

/**
 * Resolves an OCI image config `User` (image-spec config.md: `user`, `uid`, `user:group`,
 * `uid:gid`, `uid:group`, `user:gid`; empty means root) against the image's own /etc/passwd
 * and /etc/group, as Docker does: a numeric uid needs no passwd entry (its gid is then 0), a
 * name must exist; likewise for groups.
 */
export function resolveUser(user: string | undefined, passwd: string, group: string): ImageUser {
  const spec = (user ?? '').trim()
  if (spec === '') return { uid: 0, gid: 0, additionalGids: [], home: rootHome(passwd) }
  const [userPart, groupPart, ...rest] = spec.split(':')
  if (rest.length > 0 || userPart === '' || groupPart === '') throw invalid(spec)
  const users = parsePasswd(passwd)
  const groups = parseGroup(group)
  const entry = isId(userPart!)
    ? users.find((u) => u.uid === Number(userPart))
    : users.find((u) => u.name === userPart)
  if (!entry && !isId(userPart!)) {
    throw new ThawError(
      'IMAGE_USER_UNKNOWN',
      `user "${userPart}" is not in the image's /etc/passwd`,
      {
        fault: 'user',
      },
    )
  }
  const uid = entry?.uid ?? Number(userPart)
  let gid = entry?.gid ?? 0
  if (groupPart !== undefined) {
    const g = isId(groupPart)
      ? { gid: Number(groupPart) }
      : groups.find((x) => x.name === groupPart)
    if (!g) {
      throw new ThawError(
        'IMAGE_GROUP_UNKNOWN',
        `group "${groupPart}" is not in the image's /etc/group`,
        {
          fault: 'user',
        },
      )
    }
    gid = g.gid
  }
  const additionalGids = entry
    ? [...new Set(groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid))].filter(
        (g) => g !== gid,
      )
    : []
  return { uid, gid, additionalGids, home: entry?.home ?? '/' }
}

/** Reads /etc/passwd and /etc/group from the image root (`lowerDir`) and resolves `user`. */
export async function resolveImageUser(root: string, user: string | undefined): Promise<ImageUser> {
  const [passwd, group] = await Promise.all([
    readFileInRoot(root, '/etc/passwd'),
    readFileInRoot(root, '/etc/group'),
  ])
  return resolveUser(user, passwd?.toString('utf8') ?? '', group?.toString('utf8') ?? '')
}

function rootHome(passwd: string): string {
  return parsePasswd(passwd).find((u) => u.uid === 0)?.home ?? '/'
}

function isId(s: string): boolean {
  return /^\d{1,10}$/.test(s) && Number(s) <= 0xfffffffe
}

function invalid(spec: string): ThawError {
  return new ThawError('IMAGE_USER_INVALID', `invalid image user "${spec}"`, { fault: 'user' })
}
