/**
 * The cold-start benchmark (issue 7): `npm run bench [-- --quick]`. Builds what is missing,
 * runs every contender on every link and image, and writes results/<date>-<mode>.{json,md,svg}
 * and results/latest-<mode>.{json,md,svg}. Needs root (namespaces, runc, drop_caches). Prints
 * what it measured; asserts nothing about time.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseBenchArgs, UsageError } from './options.ts'
import { renderMarkdown } from './render-markdown.ts'
import { renderSvg } from './render-svg.ts'
import { runBench } from './run-bench.ts'

const HERE = dirname(fileURLToPath(import.meta.url))

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  let options
  try {
    options = parseBenchArgs(argv, join(HERE, 'results'))
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error((err as Error).message)
      return 2
    }
    throw err
  }
  if (process.getuid?.() !== 0) {
    console.error('the benchmark needs root (network namespaces, runc, overlayfs, drop_caches)')
    return 1
  }
  const abort = new AbortController()
  const stop = () => abort.abort(new Error('interrupted'))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const log = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`)
  await mkdir(options.outDir, { recursive: true })
  const partial = join(options.outDir, `partial-${options.mode}.json`)
  const results = await runBench({
    options,
    command: ['npm run bench --', ...argv].join(' '),
    log,
    signal: abort.signal,
    // What is done so far, for a run cut short (rerender.ts turns it into .md and .svg).
    onProgress: (r) => writeFile(partial, `${JSON.stringify(r, null, 2)}\n`),
  })
  await rm(partial, { force: true })
  const stamp = results.date.slice(0, 16).replace(/[-:]/g, '').replace('T', '-')
  const markdown = renderMarkdown(results)
  for (const base of [`${stamp}-${options.mode}`, `latest-${options.mode}`]) {
    await writeFile(join(options.outDir, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`)
    await writeFile(join(options.outDir, `${base}.md`), markdown)
    await writeFile(join(options.outDir, `${base}.svg`), renderSvg(results))
  }
  console.log(`\n${markdown}`)
  log(`results in ${options.outDir}/latest-${options.mode}.{json,md,svg}`)
  return 0
}

process.exitCode = await main()
