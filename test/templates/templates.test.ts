import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { initProject, listTemplates } from '../../host/init/init-project.ts'
import { freePort, run, startProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

/** How each template runs its own tests. */
const TEST_COMMAND: Record<string, [string, string[]]> = {
  'http-typescript': ['npm', ['test']],
  'http-javascript': ['npm', ['test']],
  'custom-handler-python': ['python3', ['-m', 'unittest', '-v']],
}

describe('templates', () => {
  it('has the three templates, each with a README and the files a project needs', async () => {
    expect(await listTemplates()).toEqual(Object.keys(TEST_COMMAND).sort())
  })

  it.each(Object.keys(TEST_COMMAND))(
    '%s: thaw init, its own tests pass, thaw start serves it',
    async (template) => {
      const dir = join(await tmpDir(), `my-${template}`)
      await run(THAW, ['init', dir, '--template', template])
      const files = ['README.md', 'host.json', 'local.settings.json', '.funcignore', '.gitignore']
      if (template.startsWith('http-')) files.push('package.json')
      if (template === 'http-typescript') files.push('tsconfig.json')
      for (const f of files) expect((await stat(join(dir, f))).isFile(), f).toBe(true)
      expect(await readFile(join(dir, 'README.md'), 'utf8')).toMatch(
        new RegExp(`^# my-${template}\\n`),
      )

      const [command, args] = TEST_COMMAND[template]!
      const { stdout, stderr } = await run(command, args, { cwd: dir })
      expect(`${stdout}${stderr}`).toMatch(
        template.startsWith('http-') ? /# pass 3\n# fail 0/ : /Ran 3 tests[\s\S]*\nOK/,
      )

      if (template === 'http-typescript') {
        await run('npm', ['run', 'build'], { cwd: dir }) // what a deployment runs: tsc → dist/
        expect((await stat(join(dir, 'dist/src/functions/hello.js'))).isFile()).toBe(true)
      }

      const port = await freePort()
      const start = startProcess(THAW, ['start', '--port', String(port), '--no-watch'], {
        cwd: dir,
      })
      await start.waitFor(new RegExp(`hello: \\[GET,POST\\] http://localhost:${port}/api/hello`))
      const res = await fetch(`http://127.0.0.1:${port}/api/hello?name=Template`)
      expect(await res.text()).toBe('Hello, Template!')
      await start.stop()
    },
  )

  it('refuses an unknown template and a folder that is not empty', async () => {
    const dir = await tmpDir()
    await expect(initProject({ dir, template: 'cobol' })).rejects.toMatchObject({
      code: 'TEMPLATE_UNKNOWN',
      fault: 'user',
    })
    await initProject({ dir, template: 'custom-handler-python' })
    await expect(initProject({ dir, template: 'custom-handler-python' })).rejects.toMatchObject({
      code: 'DIR_NOT_EMPTY',
    })
  })
})
