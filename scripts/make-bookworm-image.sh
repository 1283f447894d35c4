#!/bin/sh
# make-bookworm-image.sh [CACHE_DIR]: a Debian bookworm minbase image as an OCI layout, for
# the pull benchmark and tests/image_pull_bookworm.rs: mmdebstrap's rootfs tarball (from the
# host's own apt sources) → one gzip layer → CACHE_DIR/layout (tag `bookworm`). Both are
# cached (default /var/cache/ocibox-bench); remove them to rebuild. Prints the layout's path.
set -eu
cache=${1:-/var/cache/ocibox-bench}
mkdir -p "$cache"
command -v mmdebstrap >/dev/null 2>&1 || "$(dirname "$0")/install-deps.sh"
tarball=$cache/bookworm-minbase.tar
if [ ! -f "$tarball" ]; then
    echo "make-bookworm-image: building the bookworm minbase rootfs with mmdebstrap" >&2
    # From the host's own apt sources (the machine's configured mirror; none is named here).
    sources=
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$f" ]; then sources=$f; break; fi
    done
    mmdebstrap --variant=minbase --quiet bookworm "$cache/bookworm-minbase.tmp.tar" ${sources:+"$sources"}
    mv "$cache/bookworm-minbase.tmp.tar" "$tarball"
fi
layout=$cache/layout
if [ ! -f "$layout/index.json" ]; then
    echo "make-bookworm-image: making the OCI layout" >&2
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
echo "$layout"
