#!/bin/bash
# fault-inject-shim.sh [N]: kill -9 the containerd shim of a starting container at a random
# point, N times (default 30) per shim, and count what is left. A private containerd 1.6 (its
# own root, state and socket) runs `ctr run -d` of a busybox container; 0-MAX_MS ms after the
# shim process appears it is killed. Then, as a user would clean up, `ctr task delete -f` and
# `ctr container rm`. Counted per try, after that cleanup: shim processes still alive,
# container processes (busybox `sleep` of the try), shim sockets in /run/containerd/s that
# nobody serves, rootfs mounts, bundle directories.
# The ocibox shim (io.containerd.ocibox.v2 over ocibox's runtime) beside containerd's own
# (io.containerd.runc.v2 over Debian's runc). Prints a Markdown table.
# As root. Cleans up after every try and on exit (containerd, shims, containers, dirs).
# Environment: OCIBOX (binary), MAX_MS (kill window, default 60). "shim killed" counts the
# tries whose shim was found and killed (the rest finished or failed before it appeared).
set -u
cd "$(dirname "$0")/.."
N=${1:-30}
MAX_MS=${MAX_MS:-60}
ocibox=${OCIBOX:-target/x86_64-unknown-linux-gnu/release/ocibox}
[ -x "$ocibox" ] || { echo "no $ocibox: cargo build --release first (or set OCIBOX)" >&2; exit 1; }
command -v containerd >/dev/null || { echo "containerd is needed: scripts/install-deps.sh" >&2; exit 1; }
ocibox=$(readlink -f "$ocibox")
work=$(mktemp -d /tmp/ocibox-shim-faults.XXXXXX)
addr="$work/c.sock"
ns="faults$$"
cpid=

ctr_() { ctr -a "$addr" -n "$ns" "$@"; }

cleanup() {
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s KILL "$id" >/dev/null 2>&1; done
    sleep 0.2
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$id" >/dev/null 2>&1; done
    for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container rm "$id" >/dev/null 2>&1; done
    for p in $(pgrep -f -- "-namespace $ns " 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
    grep " $work/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
ln -s "$ocibox" "$work/bin/containerd-shim-ocibox-v2"
cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$addr"
[ttrpc]
  address = "$addr.ttrpc"
EOF
PATH="$work/bin:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
scripts/make-busybox-image.sh "$work/busybox.tar" >/dev/null
ctr_ image import "$work/busybox.tar" >/dev/null || { echo "image import failed" >&2; exit 1; }
image=docker.io/library/busybox:latest

# Sockets under /run/containerd/s that no process listens on any more.
dead_sockets() {
    local n=0 s
    for s in /run/containerd/s/*; do
        [ -S "$s" ] || continue
        grep -q " $s\$" /proc/net/unix 2>/dev/null || n=$((n + 1))
    done
    echo "$n"
}

# One try: start, kill the shim 0-MAX_MS ms after it appears, clean up as a user, count.
try_one() {
    local runtime=$1 id=$2 marker=$3 ms shim left_shim left_proc left_mnt left_bundle
    ctr_ run -d --runtime "$runtime" "$image" "$id" sleep "$marker" >/dev/null 2>&1 &
    local runner=$!
    for _ in $(seq 400); do
        shim=$(pgrep -f -- "-namespace $ns .*-id $id( |$)" | head -1)
        [ -n "$shim" ] && break
        sleep 0.005
    done
    ms=$((RANDOM % (MAX_MS + 1)))
    sleep "$(printf '0.%03d' "$ms")"
    local killed=0
    [ -n "$shim" ] && kill -9 "$shim" 2>/dev/null && killed=1
    wait "$runner" 2>/dev/null
    ctr_ task kill -s KILL "$id" >/dev/null 2>&1
    sleep 0.1
    ctr_ task delete -f "$id" >/dev/null 2>&1
    ctr_ container rm "$id" >/dev/null 2>&1
    sleep 0.1
    left_shim=$(pgrep -f -- "-namespace $ns .*-id $id( |$)" | wc -l)
    left_proc=$(pgrep -f -- "^sleep $marker\$" | wc -l)
    left_mnt=$(grep -c "/$ns/$id/rootfs" /proc/self/mounts)
    left_bundle=0
    [ -e "$work/state/io.containerd.runtime.v2.task/$ns/$id" ] && left_bundle=1
    echo "$killed $left_shim $left_proc $left_mnt $left_bundle"
    # Leave the machine as it was for the next try.
    for p in $(pgrep -f -- "-namespace $ns .*-id $id( |$)"); do kill -9 "$p" 2>/dev/null; done
    for p in $(pgrep -f -- "^sleep $marker\$"); do kill -9 "$p" 2>/dev/null; done
    grep "/$ns/$id/rootfs" /proc/self/mounts | awk '{print $2}' | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work/state/io.containerd.runtime.v2.task/$ns/$id"
}

echo "| shim | tries | shim killed | shims alive | container processes | rootfs mounts | bundle dirs | dead sockets (whole run) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for runtime in io.containerd.ocibox.v2 io.containerd.runc.v2; do
    before=$(dead_sockets)
    k=0 s=0 p=0 m=0 b=0
    for i in $(seq "$N"); do
        read -r lk ls lp lm lb < <(try_one "$runtime" "f$i-${runtime//./-}" "$((86000 + i))")
        [ "$lk" -gt 0 ] && k=$((k + 1))
        [ "$ls" -gt 0 ] && s=$((s + 1))
        [ "$lp" -gt 0 ] && p=$((p + 1))
        [ "$lm" -gt 0 ] && m=$((m + 1))
        [ "$lb" -gt 0 ] && b=$((b + 1))
    done
    after=$(dead_sockets)
    echo "| $runtime | $N | $k | $s | $p | $m | $b | $((after - before)) |"
done
