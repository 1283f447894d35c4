#!/bin/sh
# bench-start.sh [N]: start latency of `run` of /bin/true in the busybox bundle, ocibox vs
# runc vs crun (when it runs on this host) vs a bare `unshare` of the same namespaces,
# interleaved in one run (one round = every contender once, order rotated), medians and
# ratios to runc. Also: ocibox without the sealed-binary protection (CVE-2019-5736), to
# show what it costs, and with containerd's default seccomp profile.
# As root. Prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
N=${1:-40}
bin=${OCIBOX:-target/x86_64-unknown-linux-gnu/release/ocibox}
[ -x "$bin" ] || cargo build --release >/dev/null
work=$(mktemp -d /tmp/ocibox-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
OCIBOX="$bin" scripts/make-busybox-bundle.sh "$work/bundle" /bin/true
seccomp_profile=tests/fixtures/seccomp/containerd-default.json
if [ -f "$seccomp_profile" ]; then
    cp -r "$work/bundle" "$work/bundle-seccomp"
    jq --slurpfile p "$seccomp_profile" '.linux.seccomp = $p[0]' "$work/bundle/config.json" >"$work/bundle-seccomp/config.json"
fi

now() { date +%s%N; }
# Each contender: a name and a command line run with `sh -c`.
i=0
add() { i=$((i + 1)); eval "name_$i=\$1; cmd_$i=\$2"; : >"$work/times.$i"; }
add "ocibox" "$bin runc --root $work/ocibox run -b $work/bundle c"
add "ocibox (no exe seal)" "_OCIBOX_BENCH_UNSAFE_NO_EXE_SEAL=1 $bin runc --root $work/ocibox2 run -b $work/bundle c"
if [ -f "$seccomp_profile" ]; then
    add "ocibox + seccomp" "$bin runc --root $work/ocibox3 run -b $work/bundle-seccomp c"
    add "runc + seccomp" "runc --root $work/runc2 run -b $work/bundle-seccomp c"
fi
add "runc" "runc --root $work/runc run -b $work/bundle c"
if crun --root "$work/crun-probe" run -b "$work/bundle" probe >/dev/null 2>&1; then
    add "crun" "crun --root $work/crun run -b $work/bundle c"
else
    echo "crun: does not run on this host (cgroup layout), left out" >&2
fi
add "unshare (floor)" "unshare --pid --fork --net --ipc --uts --mount /bin/true"
count=$i

# Warm up once each.
j=1; while [ $j -le "$count" ]; do eval "sh -c \"\$cmd_$j\"" >/dev/null 2>&1 || { eval "echo \"failed: \$name_$j\"" >&2; exit 1; }; j=$((j + 1)); done
round=0
while [ $round -lt "$N" ]; do
    k=0
    while [ $k -lt "$count" ]; do
        j=$(( (round + k) % count + 1 ))
        eval "c=\$cmd_$j"
        t0=$(now); sh -c "$c" >/dev/null 2>&1; t1=$(now)
        echo $(( (t1 - t0) / 1000 )) >>"$work/times.$j"
        k=$((k + 1))
    done
    round=$((round + 1))
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
runc_med=""
j=1; while [ $j -le "$count" ]; do
    eval "n=\$name_$j"; m=$(median "$work/times.$j"); eval "med_$j=$m"
    [ "$n" = "runc" ] && runc_med=$m
    j=$((j + 1))
done
echo "start latency, \`run\` of /bin/true, $N interleaved rounds, $(nproc) cores, $(uname -r)"
echo
echo "| contender | median ms | ratio to runc |"
echo "|---|---:|---:|"
j=1; while [ $j -le "$count" ]; do
    eval "n=\$name_$j; m=\$med_$j"
    awk -v n="$n" -v m="$m" -v r="$runc_med" 'BEGIN { printf "| %s | %.2f | %.2f |\n", n, m/1000, m/r }'
    j=$((j + 1))
done
