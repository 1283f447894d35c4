#!/bin/sh
# The main job on embedded defaults: build the static binary, make a busybox bundle,
# run a container through the runtime applet and show its output.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
scripts/install-deps.sh
cargo build --release
bin=target/x86_64-unknown-linux-gnu/release/ocibox
ls -l "$bin"
work=$(mktemp -d /tmp/ocibox-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$bin" --install -s "$work/bin"
OCIBOX="$bin" scripts/make-busybox-bundle.sh "$work/bundle" sh -c 'echo "hello from $(hostname): pid $$, $(id)"; uname -a'
"$work/bin/runc" --root "$work/state" run --bundle "$work/bundle" ocibox-demo
