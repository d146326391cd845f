import { mkdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { appName, buildAppImage, readAppSource } from '../../../host/deploy/build-app-image.ts'
import { appImageConfig, WORKER_ENTRYPOINT } from '../../../host/deploy/app-image-config.ts'
import { initProject } from '../../../host/init/init-project.ts'
import { emptyImage, type Image } from '../../../runtime/oci/image.ts'
import { tarEntries } from '../../support/tar-entries.ts'
import { tmpDir } from '../../support/tmp.ts'

async function template(name: string): Promise<string> {
  const dir = join(await tmpDir('thaw-deploy-app-'), 'myapp')
  await initProject({ dir, template: name })
  return dir
}

/** A stand-in base: the empty image with a config like node-base.ts writes. */
function base(): Image {
  return emptyImage({ os: 'linux', architecture: 'amd64' })
}

async function layerNames(image: Image): Promise<string[]> {
  const top = image.manifest.layers.at(-1)!
  const chunks: Buffer[] = []
  for await (const c of await image.openBlob(top)) chunks.push(c as Buffer)
  return tarEntries(Buffer.concat(chunks)).map((e) => e.header.name)
}

describe('readAppSource and buildAppImage on the http-typescript template', () => {
  it('puts the compiled JavaScript, host.json, package.json and production node_modules in the layer, and leaves out sources, tests, secrets and dev dependencies', async () => {
    const dir = await template('http-typescript')
    const source = await readAppSource(dir)
    expect(source).toMatchObject({ name: 'myapp', kind: 'node', typescript: true })
    const { image } = await buildAppImage(base(), source)
    const names = await layerNames(image)
    const app = (p: string) => `home/site/wwwroot/${p}`
    expect(names).toContain(app('host.json'))
    expect(names).toContain(app('package.json'))
    expect(names).toContain(app('dist/src/functions/hello.js'))
    expect(names).toContain(app('node_modules/@azure/functions/package.json'))
    // @azure/functions' own dependency, hoisted as npm does
    expect(names).toContain(app('node_modules/cookie/package.json'))
    for (const absent of [
      'src/functions/hello.ts',
      'local.settings.json',
      'test/',
      'tsconfig.json',
      'node_modules/typescript/',
      'node_modules/tsx/',
      'node_modules/thaw/',
      'node_modules/@types/',
    ]) {
      expect(names, absent).not.toContain(app(absent))
    }
    expect(names.some((n) => n.includes('/.bin/'))).toBe(false)
  })

  it('compiles to CommonJS as the tsconfig asks, loadable by require', async () => {
    const dir = await template('http-typescript')
    const source = await readAppSource(dir)
    const hello = source.files.find((f) => f.path === 'dist/src/functions/hello.js')!
    const js = hello.data.toString()
    expect(js).toMatch(/require\("@azure\/functions"\)/)
    expect(js).not.toMatch(/: HttpRequest|import type/)
  })

  it('sets the config for the worker: entrypoint, WorkingDir, script root, labels; and the layer on top of the base layers', async () => {
    const dir = await template('http-typescript')
    const { image, layer } = await buildAppImage(base(), await readAppSource(dir))
    const c = image.config.config!
    expect(c.Entrypoint).toEqual(WORKER_ENTRYPOINT)
    expect(c.Entrypoint).toEqual(['node', '/.thaw/worker/worker.mjs'])
    expect(c.Cmd).toEqual([])
    expect(c.WorkingDir).toBe('/home/site/wwwroot')
    expect(c.Env).toContain('AzureWebJobsScriptRoot=/home/site/wwwroot')
    expect(c.Env).toContain('FUNCTIONS_WORKER_RUNTIME=node')
    expect(c.Labels).toEqual({ 'dev.thaw.app': 'myapp', 'dev.thaw.kind': 'node' })
    expect(image.manifest.layers).toEqual([layer.descriptor])
    expect(image.config.rootfs.diff_ids).toEqual([layer.diffId])
    expect(image.config.created).toBe('1970-01-01T00:00:00.000Z')
  })

  it('gives the same digest for the same folder, whatever the files’ mtimes, and another when a file changes', async () => {
    const dir = await template('http-typescript')
    const first = await buildAppImage(base(), await readAppSource(dir))
    await utimes(join(dir, 'host.json'), 1_234_567, 1_234_567)
    await utimes(join(dir, 'src/functions/hello.ts'), 2_345_678, 2_345_678)
    const again = await buildAppImage(base(), await readAppSource(dir))
    expect(again.image.digest).toBe(first.image.digest)
    expect(again.layer.descriptor.digest).toBe(first.layer.descriptor.digest)
    await writeFile(
      join(dir, 'src/functions/hello.ts'),
      `${(await readAppSource(dir)).files.length}\n`,
      { flag: 'a' },
    )
    const changed = await buildAppImage(base(), await readAppSource(dir))
    expect(changed.image.digest).not.toBe(first.image.digest)
  })
})

describe('custom-handler apps', () => {
  it('start the handler from host.json: a command on PATH with its arguments, in the script root', async () => {
    const dir = await template('custom-handler-python')
    const source = await readAppSource(dir)
    expect(source.kind).toBe('custom-handler')
    const { image } = await buildAppImage(base(), source)
    const c = image.config.config!
    expect(c.Entrypoint).toEqual(['python3', 'handler.py'])
    expect(c.WorkingDir).toBe('/home/site/wwwroot')
    expect(c.Env).toContain('FUNCTIONS_WORKER_RUNTIME=custom')
    expect(c.Labels).toEqual({ 'dev.thaw.app': 'myapp', 'dev.thaw.kind': 'custom-handler' })
    const names = await layerNames(image)
    expect(names).toContain('home/site/wwwroot/handler.py')
    expect(names).toContain('home/site/wwwroot/hello/function.json')
    expect(names).not.toContain('home/site/wwwroot/test_handler.py') // .funcignore
    expect(names).not.toContain('home/site/wwwroot/local.settings.json')
  })

  it.each([
    // [executable, workingDirectory, files in the app, expected entrypoint[0], expected WorkingDir]
    ['python3', undefined, [], 'python3', '/home/site/wwwroot'], // a command: looked up on PATH
    ['handler', undefined, ['handler'], '/home/site/wwwroot/handler', '/home/site/wwwroot'], // a file of the app: absolute
    ['server', 'bin', ['bin/server'], '/home/site/wwwroot/bin/server', '/home/site/wwwroot/bin'], // relative to workingDirectory
    ['server', 'bin', [], 'server', '/home/site/wwwroot/bin'], // not in the app: a command
  ] as const)('%s in %s → %s', (executable, workingDirectory, files, entry, workDir) => {
    const c = appImageConfig({
      name: 'x',
      kind: 'custom-handler',
      customHandler: {
        executable,
        arguments: ['--port', '%FUNCTIONS_CUSTOMHANDLER_PORT%'],
        workingDirectory,
        enableForwardingHttpRequest: false,
        port: undefined,
      },
      files: new Set(files),
      created: new Date(0),
    })
    expect(c.entrypoint).toEqual([entry, '--port', '%FUNCTIONS_CUSTOMHANDLER_PORT%'])
    expect(c.workingDir).toBe(workDir)
  })
})

describe('bad app folders', () => {
  it.each([
    // [what the folder has, the error code]
    [{}, 'APP_NOT_FOUND'], // no host.json
    [{ 'host.json': '{"version":"2.0"}' }, 'APP_KIND_UNKNOWN'], // neither package.json nor customHandler
    [{ 'host.json': '{"version":' }, 'APP_CONFIG_INVALID'], // broken host.json
    [
      {
        'host.json': '{"version":"2.0"}',
        'package.json': '{"dependencies":{"not-installed-anywhere-x":"1"}}',
      },
      'DEPENDENCY_MISSING',
    ], // a dependency not installed
    [
      {
        'host.json': '{"version":"2.0"}',
        'package.json': '{}',
        'tsconfig.json': '{}',
        'src/a.ts': 'const = ;',
      },
      'TYPESCRIPT_BUILD_FAILED',
    ], // a syntax error
  ] as const)('%j → %s', async (files, code) => {
    const dir = await tmpDir('thaw-deploy-bad-')
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(dir, path, '..'), { recursive: true })
      await writeFile(join(dir, path), text)
    }
    await expect(readAppSource(dir)).rejects.toMatchObject({ code })
  })
})

describe('appName', () => {
  it.each([
    // [package.json name or folder, app name]
    ['hello', 'hello'], // already fine
    ['My_App.v2', 'my-app-v2'], // upper case, "_" and "." are not DNS label characters
    ['-x-', 'x'], // no "-" at the ends
    ['a'.repeat(50), 'a'.repeat(40)], // at most 40
    ['___', 'app'], // nothing left
  ])('%s → %s', (raw, name) => {
    expect(appName(raw)).toBe(name)
  })
})
