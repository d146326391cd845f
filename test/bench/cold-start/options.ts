import { parseArgs } from 'node:util'
import type { ImageName } from './build-images.ts'
import { LINKS, type LinkName } from './link.ts'

export interface BenchOptions {
  mode: 'quick' | 'full'
  runs: number
  links: LinkName[]
  images: ImageName[]
  /** Contender ids to run (default: all). */
  contenders: string[] | undefined
  cacheDir: string
  outDir: string
}

const IMAGE_NAMES: ImageName[] = ['multi', 'single', 'small']

export const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--links a,b] [--images a,b] [--contenders a,b]
                       [--cache-dir DIR] [--out DIR]
  --quick        small image, loopback and same-region, 5 runs (a few minutes once it is built)
  default        images multi,single,small; links ${Object.keys(LINKS).join(',')}; 5 runs
  --links        ${Object.keys(LINKS).join(', ')}
  --images       ${IMAGE_NAMES.join(', ')}
  --contenders   full-pull, cached-cold, cached-warm, stargz-optimized (builds its daemon with
                 scripts/install-bench.sh); thaw-cold, thaw-profile, thaw-again,
                 snapshotter-cold, snapshotter-profile with THAW_BENCH_THAW=1
  --cache-dir    built images, registry storage (default /var/tmp/thaw-cache)
  --out          where results go (default test/bench/cold-start/results)`

export function parseBenchArgs(argv: string[], defaultOutDir: string): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      links: { type: 'string' },
      images: { type: 'string' },
      contenders: { type: 'string' },
      'cache-dir': { type: 'string', default: '/var/tmp/thaw-cache' },
      out: { type: 'string', default: defaultOutDir },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) throw new UsageError(USAGE)
  const quick = values.quick
  const list = <T extends string>(
    value: string | undefined,
    allowed: readonly T[],
    fallback: T[],
  ) => {
    if (value === undefined) return fallback
    const items = value.split(',').filter(Boolean)
    const bad = items.filter((i) => !allowed.includes(i as T))
    if (bad.length)
      throw new UsageError(`unknown: ${bad.join(', ')} (one of ${allowed.join(', ')})\n${USAGE}`)
    return items as T[]
  }
  const runs = values.runs === undefined ? 5 : Number(values.runs)
  if (!Number.isInteger(runs) || runs < 1)
    throw new UsageError(`--runs must be a positive integer\n${USAGE}`)
  return {
    mode: quick ? 'quick' : 'full',
    runs,
    links: list(
      values.links,
      Object.keys(LINKS) as LinkName[],
      quick ? ['loopback', 'same-region'] : (Object.keys(LINKS) as LinkName[]),
    ),
    images: list(values.images, IMAGE_NAMES, quick ? ['small'] : IMAGE_NAMES),
    contenders: values.contenders?.split(',').filter(Boolean),
    cacheDir: values['cache-dir'],
    outDir: values.out,
  }
}

export class UsageError extends Error {}
