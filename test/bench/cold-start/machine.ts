import { cpus, release, totalmem } from 'node:os'
import { runCommand } from '../../../host/os/run-command.ts'

/** What the results depend on: CPU, memory, kernel, and the versions of the tools measured. */
export async function machineFacts(): Promise<Record<string, string | number>> {
  const version = async (command: string, args: string[]) =>
    await runCommand(command, args).then(
      (r) => (r.stdout || r.stderr).trim().split('\n')[0]!,
      () => 'not found',
    )
  const cpu = cpus()
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cpus: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    containerd: await version('containerd', ['--version']),
    runc: await version('runc', ['--version']),
    registry: await version('docker-registry', ['--version']),
    'stargz-snapshotter': await version('dpkg-query', [
      '-W',
      '-f=${Version}',
      'golang-github-containerd-stargz-snapshotter-dev',
    ]),
    disk: await version('sh', ['-c', 'df -h /var/tmp | tail -1']),
  }
}
