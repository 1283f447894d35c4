#!/bin/bash
# fault-inject.sh [N]: kill -9 a process of a container's creation at a random point, N times
# (default 50) per case, and count what is left: cgroup directories, processes, state
# directories, mounts. Cases:
#   create  the runtime's `create`, 0-50 ms after it started;
#   init    the container's init (every process below `create`), 0-20 ms after create
#           started it.
# For each kill two counts are taken: right after the create is gone ("after kill": when the
# init is killed after create is done, create succeeds and the container is what is left),
# and after `delete --force ID` ("after delete -f", which must find and remove it all).
# Each count is the number of tries (of N) that left something of that kind.
# ocibox and Debian's runc (/usr/sbin/runc) side by side; prints a Markdown table.
# As root. Cleans up after every try and on exit (cgroups, processes, state, bundle).
# Environment: OCIBOX (binary), RUNC (binary), MAX_MS (create's kill window, default 50),
# INIT_MAX_MS (the init's, default 20).
set -u
cd "$(dirname "$0")/.."
N=${1:-50}
MAX_MS=${MAX_MS:-50}
# Both runtimes spend 15-40 ms between starting the init and returning (release build, this
# host): a wider window would mostly kill a created container, not a create.
INIT_MAX_MS=${INIT_MAX_MS:-20}
ocibox=${OCIBOX:-target/x86_64-unknown-linux-gnu/release/ocibox}
runc=${RUNC:-/usr/sbin/runc}
[ -x "$ocibox" ] || { echo "no $ocibox: cargo build --release first (or set OCIBOX)" >&2; exit 1; }
ocibox=$(readlink -f "$ocibox")
work=$(mktemp -d /tmp/ocibox-faults.XXXXXX)
current_id=
current_root=

# Remove everything a try may have left: processes in the container's cgroups, the
# cgroup directories (deepest first), the state directory.
scrub() {
    local id=$1 root=$2 d p
    [ -n "$id" ] || return 0
    for d in $(cgroup_dirs "$id"); do
        for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        [ -f "$d/freezer.state" ] && echo THAWED >"$d/freezer.state" 2>/dev/null
    done
    for p in $(orphans); do kill -9 "$p" 2>/dev/null; done
    sleep 0.05
    for d in $(cgroup_dirs "$id" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
        rmdir "$d" 2>/dev/null
    done
    rm -rf "${root:?}/$id"
}

cleanup() {
    scrub "$current_id" "$current_root"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Cgroup directories named after the container, in every hierarchy (a relative cgroupsPath
# puts them below our own cgroup, which may be a few levels down).
cgroup_dirs() {
    find /sys/fs/cgroup -maxdepth 6 -type d -name "$1" 2>/dev/null
}

# Init processes of either runtime that lost their parent (re-parented to pid 1) and were
# not there before the try: what a killed create leaves outside any cgroup.
orphans() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" = 1 ] || continue
        case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
        "ocibox:[init]"* | "runc init"* | "sleep 31337"*)
            grep -qx "$p" "$work/before" || echo "$p" ;;
        esac
    done
}

# Processes of the try: in the container's cgroups, or orphaned inits.
procs() {
    local id=$1 d
    {
        for d in $(cgroup_dirs "$id"); do cat "$d/cgroup.procs" 2>/dev/null; done
        orphans
    } | sort -u | grep -c .
}

# "cgroups procs state mounts" left by the try of container $1 under root $2.
count() {
    local id=$1 root=$2
    local cg pr st mn
    cg=$(cgroup_dirs "$id" | grep -c .)
    pr=$(procs "$id")
    st=0; [ -e "$root/$id" ] && st=1
    mn=$(grep -c -- "$id" /proc/self/mountinfo)
    echo "$cg $pr $st $mn"
}

# Every process below $1 (children, their children, ...).
descendants() {
    local c
    for c in $(pgrep -P "$1"); do
        echo "$c"
        descendants "$c"
    done
}

# Where a relative cgroupsPath (the container id) puts the freezer cgroup: under ours.
freezer=/sys/fs/cgroup/freezer$(sed -n 's/^[0-9]*:freezer://p' /proc/self/cgroup)
freezer=${freezer%/}

# Random delay in [0, MAX_MS] ms, as a sleep(1) argument.
delay() {
    printf '0.%03d' $((RANDOM % ($1 + 1)))
}

OCIBOX=$ocibox scripts/make-busybox-bundle.sh "$work/bundle" sleep 31337 >/dev/null
[ -f "$work/bundle/config.json" ] || { echo "could not make the bundle" >&2; exit 1; }

# One case: runtime name, command words, target (create|init). Prints a table row.
run_case() {
    local name=$1 target=$2; shift 2
    local root="$work/root-$name" i id pid c
    local ok=0 k_cg=0 k_pr=0 k_st=0 k_mn=0 d_cg=0 d_pr=0 d_st=0 d_mn=0 d_fail=0
    mkdir -p "$root"
    for i in $(seq 1 "$N"); do
        id="fault-$$-$name-$target-$i"
        current_id=$id current_root=$root
        ls /proc | grep -E '^[0-9]+$' >"$work/before"
        "$@" --root "$root" create --bundle "$work/bundle" "$id" \
            </dev/null >/dev/null 2>&1 &
        pid=$!
        if [ "$target" = create ]; then
            sleep "$(delay "$MAX_MS")"
            kill -9 "$pid" 2>/dev/null
        else
            # The init: from when it has joined the container's freezer cgroup (both
            # runtimes put it there first thing), polled with builtins only (a fork per
            # look would miss the moment).
            c=
            for ((k = 0; k < 200000; k++)); do
                read -r c 2>/dev/null <"$freezer/$id/cgroup.procs"
                [ -n "$c" ] && break
                [ -e "/proc/$pid" ] || break
            done
            sleep "$(delay "$INIT_MAX_MS")"
            # Every process in the container's freezer cgroup (the init's stages; read with
            # builtins: a find over /sys/fs/cgroup takes longer than create), then anything
            # still below create.
            mapfile -t pids 2>/dev/null <"$freezer/$id/cgroup.procs"
            kill -9 "${pids[@]}" 2>/dev/null
            for c in $(descendants "$pid"); do kill -9 "$c" 2>/dev/null; done
        fi
        wait "$pid" 2>/dev/null && ok=$((ok + 1))
        read -r cg pr st mn <<<"$(count "$id" "$root")"
        [ "$cg" -gt 0 ] && k_cg=$((k_cg + 1))
        [ "$pr" -gt 0 ] && k_pr=$((k_pr + 1))
        [ "$st" -gt 0 ] && k_st=$((k_st + 1))
        [ "$mn" -gt 0 ] && k_mn=$((k_mn + 1))
        timeout 20 "$@" --root "$root" delete --force "$id" </dev/null >/dev/null 2>&1 \
            || d_fail=$((d_fail + 1))
        read -r cg pr st mn <<<"$(count "$id" "$root")"
        [ "$cg" -gt 0 ] && d_cg=$((d_cg + 1))
        [ "$pr" -gt 0 ] && d_pr=$((d_pr + 1))
        [ "$st" -gt 0 ] && d_st=$((d_st + 1))
        [ "$mn" -gt 0 ] && d_mn=$((d_mn + 1))
        scrub "$id" "$root"
        current_id=
    done
    printf '| %s | %s | %d | %d/%d/%d/%d | %d/%d/%d/%d | %d |\n' "$name" "$target" "$ok" \
        "$k_cg" "$k_pr" "$k_st" "$k_mn" "$d_cg" "$d_pr" "$d_st" "$d_mn" "$d_fail"
}

echo "kill -9 at a random point: create 0-${MAX_MS} ms after it started, the init 0-${INIT_MAX_MS} ms"
echo "after create started it; $N tries per row;"
echo "each cell: tries that left cgroup dirs / processes / state dir / mounts."
echo
echo "| runtime | killed | create succeeded | after kill | after delete -f | delete -f failed |"
echo "|---|---|---|---|---|---|"
for target in create init; do
    run_case ocibox "$target" "$ocibox" runc
    if [ -x "$runc" ]; then
        run_case runc "$target" "$runc"
    fi
done
