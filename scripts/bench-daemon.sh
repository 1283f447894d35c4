#!/bin/bash
# ociboxd beside containerd 1.6, in one run on this machine:
#   1. `ctr run --rm busybox true` wall time, rounds interleaved: Debian's ctr on containerd,
#      Debian's ctr on ociboxd, and ocibox's ctl on ociboxd (when the build has the ctl);
#      medians and ratios.
#   2. daemon memory idle (USS = private clean + dirty, RSS) of each daemon.
#   3. N running containers (default 100) on each daemon: daemon USS/RSS, and the
#      daemon's plus all shims' RSS divided by N (the cost of one container).
# Both daemons use their own shim (containerd: containerd-shim-runc-v2 + runc; ociboxd:
# ocibox's shim + ocibox's runtime) — each stack as a user gets it.
#
# Usage: scripts/bench-daemon.sh [OCIBOX_BINARY] [ROUNDS] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
rounds=${2:-20}
n=${3:-100}
if [ -z "$bin" ]; then
    bin=$here/target/x86_64-unknown-linux-gnu/release/ocibox
    [ -x "$bin" ] || bin=$here/target/x86_64-unknown-linux-gnu/debug/ocibox
fi
[ -x "$bin" ] || { echo "no ocibox binary at $bin (cargo build --release first)" >&2; exit 1; }
bin=$(readlink -f "$bin")
dir=$(mktemp -d /tmp/ocibox-bench-daemon.XXXXXX)
ns=bench
cpid= opid=
IMG=docker.io/library/busybox:latest

cctr() { command ctr -a "$dir/c.sock" -n "$ns" "$@"; }
octr() { command ctr -a "$dir/o.sock" -n "$ns" "$@"; }
own() { "$bin" ctr -a "$dir/o.sock" -n "$ns" "$@"; }

stop_all() { # socket-fn: kill and delete every task and container
    local f=$1
    for id in $($f task ls -q 2>/dev/null); do $f task kill -s KILL "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in $($f task ls -q 2>/dev/null); do $f task delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $($f container ls -q 2>/dev/null); do $f container rm "$id" >/dev/null 2>&1 || true; done
}
cleanup() {
    set +e
    [ -S "$dir/c.sock" ] && stop_all cctr
    [ -S "$dir/o.sock" ] && stop_all octr
    [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
    [ -n "$opid" ] && kill -9 "$opid" 2>/dev/null
    pkill -9 -f -- "$dir" 2>/dev/null
    sleep 0.5
    grep -o "$dir[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "/run/containerd/runc/$ns"
    for cg in /sys/fs/cgroup/*/"$ns"; do rmdir "$cg"/* "$cg" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/bin"
ln -s "$bin" "$dir/bin/containerd-shim-ocibox-v2"
cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/croot"
state = "$dir/cstate"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
TOML
containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
cpid=$!
PATH=$dir/bin:$PATH "$bin" ociboxd --root "$dir/oroot" --state "$dir/ostate" --address "$dir/o.sock" >"$dir/ociboxd.log" 2>&1 &
opid=$!
disown -a
for _ in $(seq 100); do cctr version >/dev/null 2>&1 && octr version >/dev/null 2>&1 && break; sleep 0.1; done
"$here/scripts/make-busybox-image.sh" "$dir/busybox.tar"
cctr image import "$dir/busybox.tar" >/dev/null
octr image import "$dir/busybox.tar" >/dev/null
have_own=0
own version >/dev/null 2>&1 && have_own=1

mem() { # pid -> "uss rss" in kB
    awk '/^Rss:/{r=$2} /^Private_(Clean|Dirty):/{u+=$2} END{print u, r}' "/proc/$1/smaps_rollup"
}
read -r c_idle_uss c_idle_rss < <(mem "$cpid")
read -r o_idle_uss o_idle_rss < <(mem "$opid")

now() { date +%s%N; }
declare -a t_c t_o t_own
for i in $(seq "$rounds"); do
    s=$(now); cctr run --rm "$IMG" "c$i" true; t_c+=($(( ($(now) - s) / 1000 )))
    s=$(now); octr run --rm --runtime io.containerd.ocibox.v2 "$IMG" "o$i" true; t_o+=($(( ($(now) - s) / 1000 )))
    if [ $have_own = 1 ]; then
        s=$(now); own run --rm --runtime io.containerd.ocibox.v2 "$IMG" "w$i" true; t_own+=($(( ($(now) - s) / 1000 )))
    fi
done
median() { sort -n | awk '{a[NR]=$1} END{if(NR%2)print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
mc=$(printf '%s\n' "${t_c[@]}" | median)
mo=$(printf '%s\n' "${t_o[@]}" | median)
echo "== ctr run --rm busybox true, $rounds interleaved rounds, median wall time"
awk -v c="$mc" 'BEGIN{printf "%-34s %8.1f ms\n", "ctr + containerd 1.6 (runc shim)", c/1000}'
awk -v c="$mc" -v o="$mo" 'BEGIN{printf "%-34s %8.1f ms   ratio %.2f\n", "ctr + ociboxd", o/1000, o/c}'
if [ $have_own = 1 ]; then
    mw=$(printf '%s\n' "${t_own[@]}" | median)
    awk -v c="$mc" -v o="$mw" 'BEGIN{printf "%-34s %8.1f ms   ratio %.2f\n", "ocibox ctl + ociboxd", o/1000, o/c}'
fi

for i in $(seq "$n"); do
    cctr run -d "$IMG" "cr$i" sleep 100000
    octr run -d --runtime io.containerd.ocibox.v2 "$IMG" "or$i" sleep 100000
done
sleep 2
read -r c_busy_uss c_busy_rss < <(mem "$cpid")
read -r o_busy_uss o_busy_rss < <(mem "$opid")
shim_rss() { # pattern -> sum of RSS kB of the matching shims
    local s=0
    for p in $(pgrep -f -- "$1"); do
        s=$(( s + $(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
    done
    echo $s
}
c_shims=$(shim_rss "containerd-shim-runc-v2 -namespace $ns -id cr")
o_shims=$(shim_rss "containerd-shim-ocibox-v2 -namespace $ns -id or")
echo "== daemon memory (kB)"
printf '%-22s %10s %10s %12s %12s %18s\n' daemon "idle USS" "idle RSS" "USS, $n ctrs" "RSS, $n ctrs" "(daemon+shims)/ctr"
printf '%-22s %10s %10s %12s %12s %18s\n' containerd "$c_idle_uss" "$c_idle_rss" "$c_busy_uss" "$c_busy_rss" "$(( (c_busy_rss + c_shims) / n ))"
printf '%-22s %10s %10s %12s %12s %18s\n' ociboxd "$o_idle_uss" "$o_idle_rss" "$o_busy_uss" "$o_busy_rss" "$(( (o_busy_rss + o_shims) / n ))"
