#!/bin/bash
# Wall time of `ctr run --rm busybox true` and of `ctr version` (the client's own start-up):
# ocibox's ctl beside Debian's ctr, both against one private containerd 1.6 (the same
# daemon, shim and runc: the difference is the client). N runs each, interleaved; medians
# and minimums in milliseconds printed as a table.
#
# Usage: scripts/bench-ctl-run.sh [OCIBOX_BINARY] [N]
#   OCIBOX_BINARY defaults to the release build if there is one, else the debug build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
n=${2:-21}
if [ -z "$bin" ]; then
    bin=$here/target/x86_64-unknown-linux-gnu/release/ocibox
    [ -x "$bin" ] || bin=$here/target/x86_64-unknown-linux-gnu/debug/ocibox
fi
[ -x "$bin" ] || { echo "no ocibox binary at $bin (cargo build first)" >&2; exit 1; }
bin=$(readlink -f "$bin")

dir=$(mktemp -d /tmp/ocibox-bench-ctl.XXXXXX)
ns=bench-ctl-$$
cpid=
cleanup() {
    set +e
    for id in $(command ctr -a "$dir/c.sock" -n "$ns" task ls -q 2>/dev/null); do
        command ctr -a "$dir/c.sock" -n "$ns" task kill -a -s KILL "$id" >/dev/null 2>&1
        sleep 0.2
        command ctr -a "$dir/c.sock" -n "$ns" task delete "$id" >/dev/null 2>&1
    done
    for id in $(command ctr -a "$dir/c.sock" -n "$ns" container ls -q 2>/dev/null); do
        command ctr -a "$dir/c.sock" -n "$ns" container rm "$id" >/dev/null 2>&1
    done
    [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
    grep -o "$dir[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "/run/containerd/runc/$ns"
    for cg in /sys/fs/cgroup/*/"$ns"; do rmdir "$cg"/* "$cg" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
TOML
containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
cpid=$!
disown
real() { command ctr -a "$dir/c.sock" -n "$ns" "$@"; }
own() { "$bin" ctr -a "$dir/c.sock" -n "$ns" "$@"; }
for _ in $(seq 100); do real version >/dev/null 2>&1 && break; sleep 0.1; done
"$here/scripts/make-busybox-image.sh" "$dir/busybox.tar"
real image import "$dir/busybox.tar" >/dev/null
image=docker.io/library/busybox:latest

ms() { # command... -> wall milliseconds
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END{if(NR%2)print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
minimum() { sort -n | head -1; }

# Warm both (page cache, the snapshot unpacked once).
own run --rm "$image" warm-own true >/dev/null 2>&1 || true
real run --rm "$image" warm-real true >/dev/null 2>&1 || true

run_own=() run_real=() ver_own=() ver_real=()
for i in $(seq "$n"); do
    run_own+=("$(ms own run --rm "$image" "o$i" true)")
    run_real+=("$(ms real run --rm "$image" "r$i" true)")
    ver_own+=("$(ms own version)")
    ver_real+=("$(ms real version)")
done

printf '%-34s %10s %10s\n' "wall time, ms (N=$n)" median min
row() { printf '%-34s %10s %10s\n' "$1" "$(printf '%s\n' "${@:2}" | median)" "$(printf '%s\n' "${@:2}" | minimum)"; }
row "ocibox ctr run --rm busybox true" "${run_own[@]}"
row "ctr 1.6 run --rm busybox true" "${run_real[@]}"
row "ocibox ctr version" "${ver_own[@]}"
row "ctr 1.6 version" "${ver_real[@]}"
