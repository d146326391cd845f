#!/usr/bin/env bash
# What `npm run bench` needs beyond scripts/install.sh, for its stargz-snapshotter row
# (`stargz-optimized`), installed only when a run asks for that row; the default install and
# `npm test` never need it. Idempotent and offline but for Debian's apt:
#   - Debian packages: golang-go, the stargz-snapshotter library's sources
#     (golang-github-containerd-stargz-snapshotter-dev, which brings containerd's, go-fuse's,
#     grpc's … as golang-*-dev) and stargz-snapshotter (ctr-remote);
#   - builds test/bench/cold-start/stargz/main.go, thaw's own small daemon over that library, in
#     GOPATH mode against /usr/share/gocode only (GO111MODULE=off, GOPROXY=off: nothing is
#     downloaded), into <cache-dir>/stargz-daemon/<key>/thaw-stargz-grpc, where <key> hashes
#     main.go and the versions of Go and the packages; the binary is never committed.
# Prints the daemon's path on its last line of stdout. Needs root for apt.
# usage: scripts/install-bench.sh [--cache-dir DIR]   (default /var/tmp/thaw-cache)
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir=/var/tmp/thaw-cache
while [ $# -gt 0 ]; do
  case $1 in
    --cache-dir) cache_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--cache-dir DIR]" >&2; exit 2 ;;
  esac
done

PACKAGES=(golang-go golang-github-containerd-stargz-snapshotter-dev stargz-snapshotter)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-bench: Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

src=test/bench/cold-start/stargz/main.go
key=$({
  sha256sum "$src"
  go version
  dpkg-query -W golang-github-containerd-stargz-snapshotter-dev golang-github-containerd-containerd-dev \
    golang-github-hanwen-go-fuse-dev golang-google-grpc-dev 2>/dev/null || true
} | sha256sum | cut -c1-12)
base=$cache_dir/stargz-daemon
out=$base/$key/thaw-stargz-grpc
if [ ! -x "$out" ]; then
  echo "install-bench: building $src (GOPATH mode, Debian's golang-*-dev sources)" >&2
  gopath=$base/$key/gopath
  pkg=$gopath/src/thaw.local/stargz-daemon
  mkdir -p "$pkg"
  cp "$src" "$pkg/main.go"
  (cd "$pkg" && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$base/gocache" \
    GOPROXY=off GOFLAGS= CGO_ENABLED=0 go build -o "$out.tmp" .) >&2
  mv "$out.tmp" "$out"
  rm -rf "$gopath"
fi
echo "$out"
