#!/bin/sh
# bench-pull.sh [N]: pull + unpack of a Debian bookworm minbase image (one gzip layer, made
# with mmdebstrap) from a loopback docker-registry into a fresh store: ociboxd + ocibox's
# `ctr image pull` vs containerd 1.6 + Debian's `ctr image pull`, both `--plain-http
# --snapshotter overlayfs`, each daemon fresh (own root, state, socket) in every round.
# N interleaved rounds (the order alternates), medians, ratio, the CPU time of daemon and
# client together, and the peak RSS of each side (the daemon's VmHWM plus the client's
# ru_maxrss: the daemon pulls, the client draws progress). As root. Prints Markdown.
#
# Fair by construction: a warm-up round each first (the registry's files into the page
# cache); `sync` before every timed pull, so neither pays for the other's writeback; every
# unpacked tree is kept until all rounds are done (both sides must have made the same
# number of entries), so no pull runs just after another's tree was removed: ext4 skips
# inodes freed in the last 30 s when it allocates (`recently_deleted`), and that scan was
# over a third of a pull's CPU time when each round removed its tree. For the same reason
# start a run half a minute after anything removed big trees on that filesystem (the last
# run's cleanup included).
# ARMS=ocibox or ARMS=containerd runs one side only (for profiling); KEEP=1 keeps the work
# directory; OCIBOX_BASE=path adds a third side, another ocibox binary (a before/after
# comparison in the same run). The image tarball and its OCI layout are cached under /var/cache/ocibox-bench
# (remove it to rebuild); reruns skip mmdebstrap and gzip.
set -eu
cd "$(dirname "$0")/.."
N=${1:-5}
cache=/var/cache/ocibox-bench
mkdir -p "$cache"
command -v mmdebstrap >/dev/null 2>&1 || scripts/install-deps.sh
for t in docker-registry skopeo containerd ctr python3 jq; do
    command -v "$t" >/dev/null 2>&1 || scripts/install-deps.sh
done

# --- the image: mmdebstrap tarball → gzip layer → OCI layout (all cached)
tarball=$cache/bookworm-minbase.tar
layout=$cache/layout
scripts/make-bookworm-image.sh "$cache" >/dev/null

# --- ocibox (release build; OCIBOX=path uses a given binary instead)
if [ -z "${OCIBOX:-}" ]; then
    cargo build --release --bin ocibox >/dev/null 2>&1 || cargo build --release --bin ocibox
    OCIBOX=target/x86_64-unknown-linux-gnu/release/ocibox
fi
OCIBOX=$(realpath "$OCIBOX")

work=$(mktemp -d /tmp/ocibox-bench-pull.XXXXXX)
reg_pid=""
cleanup() {
    # (the daemons are started and stopped by the rounds themselves)
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# --- the registry, the image pushed to it
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat "$work/registry/log"; exit 1; }; sleep 0.05
done
ref=127.0.0.1:$port/debian:bookworm
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:bookworm" "docker://$ref"
layer_mb=$(du -m "$layout/blobs/sha256" | cut -f1)
tar_mb=$(($(stat -c %s "$tarball") / 1048576))

# --- the rounds (python3 for the clock, wait4's ru_maxrss and /proc's VmHWM)
base_arm=""
if [ -n "${OCIBOX_BASE:-}" ]; then
    OCIBOX_BASE=$(realpath "$OCIBOX_BASE")
    base_arm=" ocibox-base"
fi
export WORK="$work" REF="$ref" OCIBOX OCIBOX_BASE="${OCIBOX_BASE:-}" N ARMS="${ARMS:-ocibox containerd}$base_arm"
python3 - "$layer_mb" "$tar_mb" <<'PY'
import os, sys, time, subprocess, statistics

work, ref, ocibox, n = os.environ["WORK"], os.environ["REF"], os.environ["OCIBOX"], int(os.environ["N"])
arms = os.environ["ARMS"].split()
layer_mb, tar_mb = sys.argv[1], sys.argv[2]

def run(argv):
    """Run argv; (seconds, peak RSS KiB of the child, its CPU seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stderr.read().decode()}")
    return t1 - t0, ru.ru_maxrss, ru.ru_utime + ru.ru_stime

def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0

def cpu(pid):
    """CPU seconds of a live process and its reaped children (utime stime cutime cstime)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

def count_files(top):
    """Entries (of any kind) below every snapshot's fs/ directory."""
    total = 0
    snaps = os.path.join(top, "snapshots")
    for s in os.listdir(snaps):
        for _, dirs, files in os.walk(os.path.join(snaps, s, "fs")):
            total += len(dirs) + len(files)
    return total

def ociboxd(binary):
    return (lambda d, addr: [binary, "daemon", "--root", f"{d}/root", "--state", f"{d}/state",
                             "--address", addr],
            [binary, "ctl"], "io.containerd.snapshotter.v1.overlayfs")

SIDES = {
    # name: (daemon argv for root/state/address, client, snapshotter root below the daemon root)
    "ocibox": ociboxd(ocibox),
    "ocibox-base": ociboxd(os.environ["OCIBOX_BASE"]),
    "containerd": (lambda d, addr: ["containerd", "--config", f"{d}/config.toml"],
                   ["ctr"], "io.containerd.snapshotter.v1.overlayfs"),
}

def round_(side, r):
    daemon_argv, client, sn_dir = SIDES[side]
    d = f"{work}/{side}-{r}"
    os.makedirs(d)
    addr = f"{d}/c.sock"
    with open(f"{d}/config.toml", "w") as f:
        f.write(f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
                f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{addr}"\n[ttrpc]\n  address = "{addr}.ttrpc"\n')
    log = open(f"{d}/log", "w")
    daemon = subprocess.Popen(daemon_argv(d, addr), stdout=log, stderr=log)
    for _ in range(400):
        if subprocess.run(client + ["-a", addr, "version"], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    else:
        daemon.kill()
        sys.exit(f"{side} did not come up: " + open(f"{d}/log").read())
    subprocess.run(["sync"], check=True)
    cpu0 = cpu(daemon.pid)
    t, client_rss, client_cpu = run(client + ["-a", addr, "-n", "bench", "image", "pull",
                                              "--plain-http", "--snapshotter", "overlayfs", ref])
    daemon_rss = hwm(daemon.pid)
    daemon_cpu = cpu(daemon.pid) - cpu0
    files = count_files(f"{d}/root/{sn_dir}")
    daemon.terminate()
    daemon.wait()
    subprocess.run(["sync"], check=True)
    return dict(t=t, rss=daemon_rss + client_rss, daemon_rss=daemon_rss, client_rss=client_rss,
                cpu=daemon_cpu + client_cpu, files=files)

# One warm-up round each (registry files into the page cache), then interleaved rounds.
res = {a: [] for a in arms}
for a in arms:
    round_(a, "warm")
for r in range(n):
    order = arms if r % 2 == 0 else list(reversed(arms))
    for a in order:
        res[a].append(round_(a, r))

files = {a: sorted({x["files"] for x in res[a]}) for a in arms}
if len({tuple(f) for f in files.values()}) != 1 or len(files[arms[0]]) != 1:
    sys.exit(f"the sides unpacked different trees: entries {files}")

def row(a, label, base):
    m = statistics.median(x["t"] for x in res[a])
    ratio = f"{m / base:.2f}x" if base else "-"
    c = statistics.median(x["cpu"] for x in res[a])
    rss = max(x["rss"] for x in res[a]) / 1024
    d = max(x["daemon_rss"] for x in res[a]) / 1024
    cl = max(x["client_rss"] for x in res[a]) / 1024
    daemon = "containerd" if a == "containerd" else "ociboxd"
    print(f"| {label} | {m*1000:.0f} ms | {ratio} | {c:.2f} s | {rss:.1f} MiB ({daemon} {d:.1f} + ctr {cl:.1f}) |")

base = statistics.median(x["t"] for x in res["containerd"]) if "containerd" in res else 0
print(f"pull + unpack of Debian bookworm minbase ({layer_mb} MB gzip layer, {tar_mb} MB tar, "
      f"{files[arms[0]][0]} entries) from a loopback docker-registry into a fresh store, "
      f"overlayfs, {n} interleaved rounds\n")
print("| | median wall time | ratio | median CPU time (daemon + client, user+sys) | peak RSS |")
print("|---|---|---|---|---|")
if "ocibox" in res:
    row("ocibox", "ociboxd + ocibox `ctr image pull --plain-http`", base)
if "ocibox-base" in res:
    row("ocibox-base", f"the same, `{os.environ['OCIBOX_BASE']}`", base)
if "containerd" in res:
    row("containerd", "containerd 1.6 + `ctr image pull --plain-http`", base)
print(f"\nhost load during the run: {open('/proc/loadavg').read().split()[0]} (1-min load average, {os.cpu_count()} CPUs)")
print("\nall rounds (s): " + "; ".join(f"{a} " + " ".join(f"{x['t']:.2f}" for x in res[a]) for a in arms))
PY
