#!/bin/sh
# bench-ctl.sh [N]: the ctl's start-up, `ctr version` against a private containerd 1.6,
# ocibox's ctl beside Debian's ctr, interleaved (one round = each client once, order
# alternating), medians of N rounds in milliseconds. `ctr version` is the whole client
# path: parse, dial, two RPCs, print. As root. Prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
N=${1:-50}
bin=${OCIBOX:-target/x86_64-unknown-linux-gnu/release/ocibox}
[ -x "$bin" ] || cargo build --release >/dev/null
work=$(mktemp -d /tmp/ocibox-bench-ctl.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/config.toml" <<EOT
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
EOT
containerd --config "$work/config.toml" >"$work/log" 2>&1 &
pid=$!
i=0
until ctr -a "$work/c.sock" version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "containerd did not start" >&2; cat "$work/log" >&2; exit 1; }
    sleep 0.05
done

# One timed run in nanoseconds.
timed() {
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $((t1 - t0))
}
: >"$work/own"
: >"$work/ctr"
r=0
while [ $r -lt "$N" ]; do
    if [ $((r % 2)) -eq 0 ]; then
        timed "$bin" ctr -a "$work/c.sock" version >>"$work/own"
        timed ctr -a "$work/c.sock" version >>"$work/ctr"
    else
        timed ctr -a "$work/c.sock" version >>"$work/ctr"
        timed "$bin" ctr -a "$work/c.sock" version >>"$work/own"
    fi
    r=$((r + 1))
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1e6}'; }
own=$(median "$work/own")
ref=$(median "$work/ctr")
echo "| client (\`ctr version\`, $N rounds) | median ms | vs ctr |"
echo "|---|---|---|"
echo "| ocibox ctl | $own | $(awk -v a="$own" -v b="$ref" 'BEGIN{printf "%.2fx", a/b}') |"
echo "| ctr 1.6 (Debian) | $ref | 1.00x |"
