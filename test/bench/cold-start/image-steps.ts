/**
 * The install steps of the large benchmark image, one layer each, as a Dockerfile would make them
 * (`RUN apt-get update && apt-get install … && apt-get clean`, `COPY`, small `RUN`s). Modelled on
 * Project Teleport's 944 MB / 28-layer image and on ../shared/peers/11-build-images.sh; the base
 * (layer 1) is host/build/debian-base.ts (Debian minbase + nodejs + python3 + an `app` user).
 */
export type ImageStep =
  | { kind: 'base' }
  | { kind: 'apt'; packages: string[] }
  | { kind: 'sh'; script: string }
  /** The function app's node_modules (COPY). */
  | { kind: 'app-deps' }
  /** The function app's own files (COPY). */
  | { kind: 'app' }

const apt = (...packages: string[]): ImageStep => ({ kind: 'apt', packages })
const sh = (script: string): ImageStep => ({ kind: 'sh', script })

export const LARGE_IMAGE_STEPS: readonly ImageStep[] = [
  { kind: 'base' },
  apt('ca-certificates', 'curl'),
  apt('tzdata'),
  apt('procps', 'less', 'vim-tiny'),
  apt('iproute2', 'iputils-ping', 'netbase'),
  apt('openssl', 'gnupg'),
  apt('xz-utils', 'unzip', 'zip', 'bzip2'),
  apt('python3-pip', 'python3-venv', 'python3-setuptools'),
  apt('npm'),
  apt('git'),
  apt('python3-numpy'),
  apt('python3-pandas'),
  apt('default-jre-headless'),
  apt('sqlite3', 'libpq5'),
  apt('tini'),
  apt('file'),
  apt('jq'),
  apt('python3-yaml', 'python3-requests'),
  apt('node-express'),
  apt('python3-flask'),
  apt('python3-pil'),
  apt('python3-lxml'),
  apt('node-semver', 'node-commander'),
  { kind: 'app-deps' },
  { kind: 'app' },
  sh(`mkdir -p /app/data && echo '{"name":"bench"}' > /app/data/config.json`),
  sh('chown -R app:app /app/data'),
  sh(`echo 'export NODE_ENV=production PYTHONUNBUFFERED=1' > /etc/profile.d/app.sh`),
]

/** What `history[].created_by` says for a step (image-spec config.md `history`). */
export function describeStep(step: ImageStep): string {
  switch (step.kind) {
    case 'base':
      return 'debian bookworm minbase + nodejs + python3 (host/build/debian-base.ts)'
    case 'apt':
      return `RUN apt-get install ${step.packages.join(' ')}`
    case 'sh':
      return `RUN ${step.script}`
    case 'app-deps':
      return 'COPY node_modules /app/node_modules'
    case 'app':
      return 'COPY . /app'
  }
}
