/**
 * The `thaw` command table. It lives above host/ and registry-edge/ because it starts both; those
 * two never import each other (STYLE.md rule 1), so each command is loaded lazily from its own part.
 */
import { runCli, type Command } from '../host/cli/command.ts'

const commands: Record<string, Command> = {
  up: {
    summary:
      'run the whole thing here: edge, host, the sample app deployed as an image and called cold',
    load: () => import('../host/cli/up.ts'),
  },
  edge: {
    summary: 'run a registry edge (origin mode with its own store, or proxy mode with --upstream)',
    load: () => import('../registry-edge/cli.ts'),
  },
  start: {
    summary: 'run a function app locally, like func start (TypeScript without a build, hot reload)',
    load: () => import('../host/cli/start.ts'),
  },
  host: {
    summary:
      'run the function host: admin API, sandboxed nodes from lazily mounted images, warm pool',
    load: () => import('../host/cli/host.ts'),
  },
  mount: {
    summary: 'mount an image lazily with FUSE in the foreground (inspection, debugging)',
    load: () => import('../host/cli/mount.ts'),
  },
  snapshotter: {
    summary:
      'a containerd remote snapshotter: thaw images start lazily under containerd and Kubernetes',
    load: () => import('../host/cli/snapshotter.ts'),
  },
  init: {
    summary:
      'create a function app from a template (http-typescript, http-javascript, custom-handler-python)',
    load: () => import('../host/cli/init.ts'),
  },
  deploy: {
    summary:
      'build the app folder into an image (no Docker), push it through the edge, deploy it to a host',
    load: () => import('../host/cli/deploy.ts'),
  },
  logs: {
    summary: "an app's log on a host, or follow it (--follow, --since 5m)",
    load: () => import('../host/cli/logs.ts'),
  },
  apps: {
    summary: "a host's apps: list, show (revisions, functions), delete, rollback APP [REVISION]",
    load: () => import('../host/cli/apps.ts'),
  },
  settings: {
    summary: "an app's settings on a host: list, set NAME=VALUE..., unset NAME... (a new revision)",
    load: () => import('../host/cli/settings.ts'),
  },
  keys: {
    summary: "an app's keys on a host: list, set, renew, delete",
    load: () => import('../host/cli/keys.ts'),
  },
  base: {
    summary:
      "build a base image here (node: from this machine's node; debian: debootstrap) and push it",
    load: () => import('../host/cli/base.ts'),
  },
}

process.exitCode = await runCli(commands, process.argv.slice(2))
