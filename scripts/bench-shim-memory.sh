#!/bin/bash
# Memory per shim process: N running containers (default 20) under ocibox's shim and under
# containerd-shim-runc-v2, both driven by one private containerd 1.6; RSS and PSS of every
# shim from /proc/<pid>/smaps_rollup, medians printed as a table.
#
# Usage: scripts/bench-shim-memory.sh [OCIBOX_BINARY] [N]
#   OCIBOX_BINARY defaults to the release build if there is one, else the debug build.
#   OCIBOX_SHIM_RUNTIME=own uses ocibox's own runtime under its shim (default: /usr/sbin/runc,
#   so both shims drive the same runtime).
#   OCIBOX_BENCH_DETAIL=1 also prints where one ocibox shim's memory is (smaps by mapping
#   kind: the binary's text/data, heap, anonymous maps such as thread stacks and malloc
#   arenas) and its threads' names. OCIBOX_BENCH_HOLD=SECONDS keeps the containers
#   running that long after measuring, for a closer look.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
n=${2:-20}
if [ -z "$bin" ]; then
    bin=$here/target/x86_64-unknown-linux-gnu/release/ocibox
    [ -x "$bin" ] || bin=$here/target/x86_64-unknown-linux-gnu/debug/ocibox
fi
[ -x "$bin" ] || { echo "no ocibox binary at $bin (cargo build first)" >&2; exit 1; }
bin=$(readlink -f "$bin")

dir=$(mktemp -d /tmp/ocibox-bench-shim.XXXXXX)
ns=bench-$$
cpid=
cleanup() {
    set +e
    for id in $(ctr -a "$dir/c.sock" -n "$ns" task ls -q 2>/dev/null); do
        ctr -a "$dir/c.sock" -n "$ns" task kill -a -s KILL "$id" >/dev/null 2>&1
    done
    sleep 1
    for id in $(ctr -a "$dir/c.sock" -n "$ns" task ls -q 2>/dev/null); do
        ctr -a "$dir/c.sock" -n "$ns" task delete "$id" >/dev/null 2>&1
        ctr -a "$dir/c.sock" -n "$ns" container rm "$id" >/dev/null 2>&1
    done
    [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
    grep -o "$dir[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "/run/containerd/ocibox/$ns" "/run/containerd/runc/$ns"
    for cg in /sys/fs/cgroup/*/"$ns"; do rmdir "$cg"/* "$cg" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/bin"
ln -s "$bin" "$dir/bin/containerd-shim-ocibox-v2"
echo 'BinaryName = "/usr/sbin/runc"' > "$dir/runc.toml"
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
PATH=$dir/bin:$PATH containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
cpid=$!
disown
ctr() { command ctr -a "$dir/c.sock" -n "$ns" "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
"$here/scripts/make-busybox-image.sh" "$dir/busybox.tar"
ctr image import "$dir/busybox.tar" >/dev/null

ocibox_opts=(--runtime io.containerd.ocibox.v2)
[ "${OCIBOX_SHIM_RUNTIME:-runc}" = own ] || ocibox_opts+=(--runtime-config-path "$dir/runc.toml")
for i in $(seq "$n"); do
    ctr run -d "${ocibox_opts[@]}" docker.io/library/busybox:latest "o$i" sleep 100000
    ctr run -d --runtime io.containerd.runc.v2 docker.io/library/busybox:latest "r$i" sleep 100000
done
sleep 2

median() { sort -n | awk '{a[NR]=$1} END{if(NR%2)print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
measure() { # prefix -> "rss_median pss_median threads_median count uss_median"
    local rss=() pss=() thr=() uss=()
    for p in $(pgrep -f -- "-namespace $ns -id $1[0-9]"); do
        [ -r "/proc/$p/smaps_rollup" ] || continue
        rss+=("$(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup")")
        pss+=("$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")")
        # USS: the pages only this process has (private clean + private dirty).
        uss+=("$(awk '/^Private_(Clean|Dirty):/{s+=$2} END{print s}' "/proc/$p/smaps_rollup")")
        thr+=("$(ls "/proc/$p/task" | wc -l)")
    done
    echo "$(printf '%s\n' "${rss[@]}" | median) $(printf '%s\n' "${pss[@]}" | median) $(printf '%s\n' "${thr[@]}" | median) ${#rss[@]} $(printf '%s\n' "${uss[@]}" | median)"
}
detail() { # pid -> smaps summary and thread names
    local p=$1
    echo "== shim pid $p: Rss/Pss kB by mapping (binary = $bin)"
    awk -v bin="$bin" '
        /^[0-9a-f]+-[0-9a-f]+ / {
            path = $6; perms = $2
            if (path == bin) key = "binary " perms
            else if (path == "") key = "anon " perms
            else key = path " " perms
            next
        }
        /^Size:/ { if (key ~ /^anon/) key = key " " $2 "k" }
        /^Rss:/ { rss[key] += $2 } /^Pss:/ { pss[key] += $2 }
        END { for (k in rss) if (rss[k] > 0) printf "%8d %8d  %s\n", rss[k], pss[k], k }
    ' "/proc/$p/smaps" | sort -rn
    echo "== threads: $(cat /proc/"$p"/task/*/comm | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')"
}
if [ "${OCIBOX_BENCH_DETAIL:-}" = 1 ]; then
    p=$(pgrep -f -- "-namespace $ns -id o1( |$)" | head -1)
    [ -n "$p" ] && detail "$p"
fi
read -r orss opss othr ocount ouss < <(measure o)
read -r rrss rpss rthr rcount russ < <(measure r)
printf '%-28s %8s %12s %12s %12s %8s\n' shim shims "USS median" "RSS median" "PSS median" threads
printf '%-28s %8s %9s kB %9s kB %9s kB %8s\n' "ocibox ($(basename "$bin"))" "$ocount" "$ouss" "$orss" "$opss" "$othr"
printf '%-28s %8s %9s kB %9s kB %9s kB %8s\n' containerd-shim-runc-v2 "$rcount" "$russ" "$rrss" "$rpss" "$rthr"
awk -v o="$orss" -v r="$rrss" 'BEGIN{printf "RSS ratio ocibox/runc-v2: %.2f\n", o/r}'
sleep "${OCIBOX_BENCH_HOLD:-0}"
