#!/bin/sh
# bench-pull.sh [N]: pull + unpack of a Debian bookworm minbase image (one gzip layer, made
# with mmdebstrap) from a loopback docker-registry into a fresh store: ocibox vs containerd
# 1.6's `ctr image pull --plain-http` into a fresh private containerd root, N interleaved
# rounds (the order alternates), medians, ratio, and the peak RSS of each side (ocibox: the
# pulling process; containerd: the daemon's VmHWM plus ctr's). As root. Prints Markdown.
#
# The ocibox side is examples/pull.rs (release build), a driver that calls the library's
# pull (`ocibox::pull::pull`) as the daemon will; the ctl's `ctr image pull` replaces it.
# The image tarball and its OCI layout are cached under /var/cache/ocibox-bench (remove it
# to rebuild); reruns skip mmdebstrap and gzip.
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
if [ ! -f "$tarball" ]; then
    echo "bench-pull: building the bookworm minbase rootfs with mmdebstrap" >&2
    mmdebstrap --variant=minbase --quiet bookworm "$cache/bookworm-minbase.tmp.tar" http://deb.debian.org/debian
    mv "$cache/bookworm-minbase.tmp.tar" "$tarball"
fi
layout=$cache/layout
if [ ! -f "$layout/index.json" ]; then
    echo "bench-pull: making the OCI layout" >&2
    rm -rf "$layout.tmp"
    mkdir -p "$layout.tmp/blobs/sha256"
    gzip -n -6 -c "$tarball" >"$layout.tmp/layer.gz"
    diff_id=$(sha256sum "$tarball" | cut -d' ' -f1)
    layer=$(sha256sum "$layout.tmp/layer.gz" | cut -d' ' -f1)
    layer_size=$(stat -c %s "$layout.tmp/layer.gz")
    mv "$layout.tmp/layer.gz" "$layout.tmp/blobs/sha256/$layer"
    jq -cn --arg d "sha256:$diff_id" '{architecture:"amd64",os:"linux",
        config:{Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],Cmd:["bash"]},
        rootfs:{type:"layers",diff_ids:[$d]},history:[]}' >"$layout.tmp/config"
    config=$(sha256sum "$layout.tmp/config" | cut -d' ' -f1)
    config_size=$(stat -c %s "$layout.tmp/config")
    mv "$layout.tmp/config" "$layout.tmp/blobs/sha256/$config"
    jq -cn --arg c "sha256:$config" --argjson cs "$config_size" --arg l "sha256:$layer" --argjson ls "$layer_size" \
        '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
          layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$l,size:$ls}]}' >"$layout.tmp/manifest"
    manifest=$(sha256sum "$layout.tmp/manifest" | cut -d' ' -f1)
    manifest_size=$(stat -c %s "$layout.tmp/manifest")
    mv "$layout.tmp/manifest" "$layout.tmp/blobs/sha256/$manifest"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$layout.tmp/oci-layout"
    jq -cn --arg m "sha256:$manifest" --argjson ms "$manifest_size" \
        '{schemaVersion:2,manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$m,size:$ms,
          annotations:{"org.opencontainers.image.ref.name":"bookworm"}}]}' >"$layout.tmp/index.json"
    rm -rf "$layout"
    mv "$layout.tmp" "$layout"
fi

# --- the ocibox driver
cargo build --release --example pull >/dev/null 2>&1 || cargo build --release --example pull
driver=target/x86_64-unknown-linux-gnu/release/examples/pull

work=$(mktemp -d /tmp/ocibox-bench-pull.XXXXXX)
reg_pid=""
cleanup() {
    # (containerd daemons are started and stopped by the rounds themselves)
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
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
export WORK="$work" REF="$ref" DRIVER="$driver" N
python3 - "$layer_mb" "$tar_mb" <<'PY'
import os, sys, time, shutil, subprocess, statistics, socket

work, ref, driver, n = os.environ["WORK"], os.environ["REF"], os.environ["DRIVER"], int(os.environ["N"])
layer_mb, tar_mb = sys.argv[1], sys.argv[2]

def run(argv, **kw):
    """Run argv; (seconds, peak RSS KiB of the child, its CPU seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
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

def ocibox_round(r):
    root = f"{work}/ocibox-{r}"
    t, rss, c = run([driver, "--root", root, "--plain-http", ref])
    shutil.rmtree(root)
    return t, rss, c

def containerd_round(r):
    d = f"{work}/containerd-{r}"
    os.makedirs(d)
    addr = f"{d}/c.sock"
    with open(f"{d}/config.toml", "w") as f:
        f.write(f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
                f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{addr}"\n[ttrpc]\n  address = "{addr}.ttrpc"\n')
    log = open(f"{d}/log", "w")
    daemon = subprocess.Popen(["containerd", "--config", f"{d}/config.toml"], stdout=log, stderr=log)
    for _ in range(400):
        if subprocess.run(["ctr", "-a", addr, "version"], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    else:
        sys.exit("containerd did not come up: " + open(f"{d}/log").read())
    cpu0 = cpu(daemon.pid)
    t, ctr_rss, ctr_cpu = run(["ctr", "-a", addr, "-n", "bench", "image", "pull", "--plain-http", ref])
    daemon_rss = hwm(daemon.pid)
    daemon_cpu = cpu(daemon.pid) - cpu0
    daemon.terminate()
    daemon.wait()
    shutil.rmtree(d)
    return t, daemon_rss + ctr_rss, daemon_rss, ctr_rss, daemon_cpu + ctr_cpu

# One warm-up round each (registry files into the page cache), then interleaved rounds.
ocibox_round("warm")
containerd_round("warm")
o, c = [], []
for r in range(n):
    if r % 2 == 0:
        o.append(ocibox_round(r)); c.append(containerd_round(r))
    else:
        c.append(containerd_round(r)); o.append(ocibox_round(r))

om = statistics.median(x[0] for x in o)
cm = statistics.median(x[0] for x in c)
o_rss = max(x[1] for x in o) / 1024
c_rss = max(x[1] for x in c) / 1024
c_d = max(x[2] for x in c) / 1024
c_c = max(x[3] for x in c) / 1024
o_cpu = statistics.median(x[2] for x in o)
c_cpu = statistics.median(x[4] for x in c)
print(f"pull + unpack of Debian bookworm minbase ({layer_mb} MB gzip layer, {tar_mb} MB tar) "
      f"from a loopback docker-registry into a fresh store, {n} interleaved rounds\n")
print("| | median wall time | ratio | median CPU time (user+sys) | peak RSS |")
print("|---|---|---|---|---|")
print(f"| ocibox (examples/pull, library pull) | {om*1000:.0f} ms | {om/cm:.2f}x | {o_cpu:.2f} s | {o_rss:.1f} MiB |")
print(f"| containerd 1.6 + `ctr image pull --plain-http` | {cm*1000:.0f} ms | 1.00x | {c_cpu:.2f} s | "
      f"{c_rss:.1f} MiB (containerd {c_d:.1f} + ctr {c_c:.1f}) |")
print(f"\nhost load during the run: {open('/proc/loadavg').read().split()[0]} (1-min load average, {os.cpu_count()} CPUs)")
print("\nall rounds (s): ocibox " + " ".join(f"{x[0]:.2f}" for x in o)
      + "; containerd " + " ".join(f"{x[0]:.2f}" for x in c))
PY
