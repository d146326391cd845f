#!/bin/bash
# Times `ctr-remote image convert --estargz --oci` (Debian's stargz-snapshotter package) on the image
# tagged $2 in the OCI layout $1, the way shared/peers/40-estargz-convert.sh does (the image is
# already in containerd's content store; only the conversion is timed). Uses a private containerd
# (own root, state and socket under $THAW_CACHE/bench-containerd), stopped by PID on exit.
# Prints one JSON line: {"seconds": <convert wall time>, "bytes": <sum of eStargz layer sizes>}.
set -euo pipefail
LAYOUT=$1 TAG=$2
BASE=${THAW_CACHE:-/var/tmp/thaw-cache}/bench-containerd
command -v ctr-remote >/dev/null || { echo "ctr-remote not installed (apt-get install stargz-snapshotter)" >&2; exit 2; }
rm -rf "$BASE"; mkdir -p "$BASE/root" "$BASE/state"
SOCK=$BASE/state/containerd.sock
cat > "$BASE/config.toml" <<X
version = 2
root = "$BASE/root"
state = "$BASE/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$BASE/opt"
X
containerd --config "$BASE/config.toml" > "$BASE/containerd.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$BASE"; }
trap cleanup EXIT
for _ in $(seq 100); do ctr --address "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
tar -C "$LAYOUT" -cf "$BASE/image.tar" .
ctr --address "$SOCK" -n bench images import --no-unpack --all-platforms --base-name bench/img "$BASE/image.tar" >&2
rm -f "$BASE/image.tar"
t0=$EPOCHREALTIME
ctr-remote --address "$SOCK" -n bench image convert --estargz --oci "bench/img:$TAG" "bench/img:esgz" >&2
t1=$EPOCHREALTIME
target=$(ctr --address "$SOCK" -n bench images ls | awk '$1=="bench/img:esgz"{print $3}')
manifest=$(ctr --address "$SOCK" -n bench content get "$target")
if echo "$manifest" | jq -e '.manifests' >/dev/null; then
  manifest=$(ctr --address "$SOCK" -n bench content get "$(echo "$manifest" | jq -r '.manifests[0].digest')")
fi
bytes=$(echo "$manifest" | jq '[.layers[].size] | add')
echo "{\"seconds\": $(echo "$t1 - $t0" | bc -l), \"bytes\": $bytes}"
