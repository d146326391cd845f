/**
 * Rewrites the .md and .svg beside results JSON files from the JSON alone (after a change to the
 * report's layout; nothing is re-measured):
 *   node --import tsx test/bench/cold-start/rerender.ts test/bench/cold-start/results/latest-quick.json
 */
import { readFile, writeFile } from 'node:fs/promises'
import { renderMarkdown } from './render-markdown.ts'
import { renderSvg } from './render-svg.ts'
import type { BenchResults } from './results.ts'

for (const path of process.argv.slice(2)) {
  if (!path.endsWith('.json')) throw new Error(`not a results .json: ${path}`)
  const results = JSON.parse(await readFile(path, 'utf8')) as BenchResults
  const base = path.slice(0, -'.json'.length)
  await writeFile(`${base}.md`, renderMarkdown(results))
  await writeFile(`${base}.svg`, renderSvg(results))
  console.log(`${base}.{md,svg}`)
}
