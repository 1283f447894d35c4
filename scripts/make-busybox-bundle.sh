#!/bin/sh
# make-busybox-bundle.sh DIR [ARGS...]: an OCI bundle in DIR with a busybox rootfs made
# from Debian's busybox-static, and a config.json from ocibox's `runc spec` without a
# terminal, running ARGS (default: sh).
set -eu
dir=${1:?usage: make-busybox-bundle.sh DIR [ARGS...]}
shift
ocibox=${OCIBOX:-$(dirname "$0")/../target/x86_64-unknown-linux-gnu/release/ocibox}
busybox=${BUSYBOX:-/bin/busybox}
rootfs="$dir/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
rm -f "$dir/config.json"
"$ocibox" runc spec --bundle "$dir"
args='["sh"]'
if [ $# -gt 0 ]; then
    args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
fi
jq --argjson a "$args" '.process.terminal = false | .process.args = $a' "$dir/config.json" >"$dir/config.json.new"
mv "$dir/config.json.new" "$dir/config.json"
