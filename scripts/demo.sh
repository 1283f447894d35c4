#!/bin/bash
# The main job on embedded defaults: build the static binary, install its links, start
# ociboxd with no config (root /var/lib/ocibox, state /run/ocibox, socket
# /run/ocibox/ociboxd.sock), serve a busybox image (made from Debian's busybox-static) from
# a registry on 127.0.0.1, pull it with ocibox's ctr (progress as ctr draws it), run it,
# run one detached and exec into it, read its metrics, kill it, stop ociboxd, and leave
# nothing behind (the default root and state are removed when this script made them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
scripts/install-deps.sh
cargo build --release
bin=$(pwd)/target/x86_64-unknown-linux-gnu/release/ocibox
ls -l "$bin"
[ -e /run/ocibox/ociboxd.sock ] && { echo "demo.sh: an ociboxd already serves /run/ocibox/ociboxd.sock" >&2; exit 1; }
made_root=0; [ -e /var/lib/ocibox ] || made_root=1
work=$(mktemp -d /tmp/ocibox-demo.XXXXXX)
dpid= rpid=
cleanup() {
    set +e
    if [ -S /run/ocibox/ociboxd.sock ]; then
        for id in $(ctr task ls -q 2>/dev/null); do ctr task kill -s KILL "$id"; done
        sleep 0.5
        for id in $(ctr task ls -q 2>/dev/null); do ctr task delete "$id"; done
        for id in $(ctr container ls -q 2>/dev/null); do ctr container rm "$id"; done
        for i in $(ctr image ls -q 2>/dev/null); do ctr image rm --sync "$i" >/dev/null; done
    fi
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    if [ $made_root = 1 ]; then
        grep -o ' /var/lib/ocibox[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
        rm -rf /var/lib/ocibox /run/ocibox
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" --install -s "$work/bin"
export PATH=$work/bin:$PATH    # ctr, ociboxd, containerd-shim-ocibox-v2 and runc are ocibox now

port=$(( 20000 + RANDOM % 20000 ))
cat > "$work/registry.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
rpid=$!
scripts/make-busybox-image.sh "$work/busybox.tar"
image=127.0.0.1:$port/library/busybox:latest
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci-archive:$work/busybox.tar" "docker://$image"

ociboxd >"$work/ociboxd.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.05; done
set -x
ctr version
ctr image pull --plain-http "$image"
ctr run --rm "$image" hello sh -c 'echo "hello from $(hostname): pid $$, $(id)"'
ctr run -d "$image" demo sleep 1000
ctr task exec --exec-id e1 demo sh -c 'echo "exec in demo: $(cat /proc/1/cmdline | tr "\0" " ")"'
ctr task ls
ctr task metrics demo
ctr task kill -s KILL demo
set +x
for _ in $(seq 50); do ctr task ls | grep -q 'demo.*STOPPED' && break; sleep 0.1; done
set -x
ctr task delete demo
ctr container rm demo
ctr image rm --sync "$image"
set +x
echo "demo done; stopping ociboxd"
