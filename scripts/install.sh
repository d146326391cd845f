#!/usr/bin/env bash
# Installs everything thaw and its tests need on a fresh Debian 12 machine, idempotently:
# the Debian packages (FUSE, OCI runtimes, a real registry, OCI tools) and the npm packages.
# Safe to run again: it only installs what is missing. Needs root (apt, /dev/fuse, runc).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  make g++ python3       # node-gyp builds thaw's FUSE layer (host/fuse) against Node's headers
  runc crun              # OCI runtimes for nodes (runc works on cgroup v1 here; crun is probed)
  docker-registry        # CNCF distribution, the real upstream registry in tests
  skopeo umoci           # real OCI clients and image tools
  containerd             # ctr, for the full-pull benchmark contender and the snapshotter's tests
  stargz-snapshotter     # ctr-remote: pulls with remote-snapshot labels (thaw snapshotter's tests)
  debootstrap            # realistic Debian base images for benchmarks
  iproute2 jq zstd attr  # netns/tc for emulated links, tools used by tests
  nftables util-linux    # nodes' firewall and loopback forwarding (nft, nsenter)
  curl                   # the benchmark's time-to-first-byte client
  gcc libc6-dev          # the user namespace helper; tests build static C programs (a handler, a syscall probe)
  chromium               # the dashboard's browser test drives Debian's chromium (puppeteer-core; no browser download)
)
# kubectl validates the Kubernetes manifests offline (deploy/kubernetes): Debian's
# kubernetes-client, unless a kubectl is installed already (another package owns the same path).
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Debian registry package starts nothing here (no init system), but make sure no stale
# service config points at a port tests use.
if [ ! -e /dev/fuse ]; then
  echo "install: warning: /dev/fuse is missing; lazy mounts and the host's e2e tests will be skipped" >&2
fi

# A node_modules that links to another checkout's (a git worktree) belongs to that checkout:
# npm ci would replace the link and empty the folder the other checkout uses.
if [ -L node_modules ]; then
  echo "install: node_modules links to $(readlink -f node_modules); npm packages left to that checkout"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install: npm packages"
  npm ci --no-fund --no-audit
fi
# thaw's FUSE layer (host/fuse/native): built offline against the running Node's own headers.
addon=host/fuse/build/Release/thaw_fuse.node
if [ ! -f "$addon" ] || [ -n "$(find host/fuse/native host/fuse/binding.gyp -newer "$addon")" ]; then
  echo "install: building host/fuse"
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  (cd host/fuse && ../../node_modules/.bin/node-gyp rebuild --nodedir="$node_prefix" --loglevel=warn)
fi
# The user namespace helper (host/sandbox/native/thaw-userns.c): idmapped mounts and namespaces
# nodes need to run as an unprivileged host id. Without it nodes run without user namespaces.
helper=host/sandbox/native/build/thaw-userns
if [ ! -x "$helper" ] || [ host/sandbox/native/thaw-userns.c -nt "$helper" ]; then
  echo "install: building host/sandbox/native"
  node_modules/.bin/tsx -e "import('./host/sandbox/user-namespace.ts').then((m) => m.buildUserNamespaceHelper())"
fi
# `thaw` on PATH: a symlink to this checkout's bin/thaw (which finds its checkout through the link).
# A link to another checkout's bin/thaw that still works is left alone (and named), so a second
# checkout on the machine does not take the command over; THAW_BIN_DIR changes the folder.
bin_dir=${THAW_BIN_DIR:-/usr/local/bin}
link="$bin_dir/thaw"
here="$PWD/bin/thaw"
if [ -L "$link" ] && [ -x "$link" ] && [ "$(readlink -f "$link")" != "$(readlink -f "$here")" ]; then
  echo "install: $link already runs $(readlink -f "$link"); left as it is"
elif [ ! -e "$link" ] || [ -L "$link" ]; then
  mkdir -p "$bin_dir"
  ln -sfn "$here" "$link"
else
  echo "install: warning: $link is not a link to a thaw checkout; not replaced (use $here)" >&2
fi
echo "install: done"
