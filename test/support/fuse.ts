import { existsSync } from 'node:fs'

/** FUSE e2e tests run where /dev/fuse exists and we are root; elsewhere they skip, saying why. */
export const fuseUnavailable: string | false = !existsSync('/dev/fuse')
  ? '/dev/fuse is missing on this machine'
  : process.getuid?.() !== 0
    ? 'FUSE tests need root (allow_other, overlay mounts)'
    : false
