#!/bin/sh
# Builds an OCI image archive of Debian's busybox-static (/bin/busybox), tagged
# docker.io/library/busybox:latest, importable with `ctr image import OUT.tar`.
# Usage: scripts/make-busybox-image.sh OUT.tar
set -eu
out=${1:?usage: $0 OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "$0: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/proc" \
    "$work/rootfs/sys" "$work/rootfs/dev" "$work/oci/blobs/sha256"
cp "$bb" "$work/rootfs/bin/busybox"
for app in $("$bb" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$work/rootfs/bin/$app"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" .
blob() { # file -> digest hex, copied into blobs
    d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$work/oci/blobs/sha256/$d"
    echo "$d"
}
size() { stat -c %s "$1"; }
diffid=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
layer=$(blob "$work/layer.tar.gz")
cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$diffid"]}}
JSON
config=$(blob "$work/config.json")
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$(size "$work/layer.tar.gz")}]}
JSON
manifest=$(blob "$work/manifest.json")
cat > "$work/oci/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$work/manifest.json"),"annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest","org.opencontainers.image.ref.name":"latest"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
tar -C "$work/oci" --sort=name --mtime=@0 --owner=0 --group=0 -cf "$out" oci-layout index.json blobs
