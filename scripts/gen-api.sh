#!/bin/sh
# Regenerate src/api/generated/ (containerd's gRPC API: prost messages, tonic clients and
# servers) from the .proto files that the containerd-client crate ships, compiled by protox
# (no protoc). The output is checked in, so building ocibox needs neither this tool nor
# protoc; rerun this only to change the API set (tools/gen-api/src/main.rs lists it).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
tool="$here/tools/gen-api"
cargo fetch --manifest-path "$tool/Cargo.toml" >/dev/null
manifest=$(cargo metadata --format-version 1 --manifest-path "$tool/Cargo.toml" |
    tr ',' '\n' | grep -o '"manifest_path":"[^"]*containerd-client-[^"]*"' | head -1 |
    sed 's/"manifest_path":"\(.*\)"/\1/')
[ -n "$manifest" ] || { echo "gen-api: containerd-client's sources not found" >&2; exit 1; }
vendor="$(dirname "$manifest")/vendor"
out="$here/src/api/generated"
rm -rf "$out"
cargo run --quiet --release --manifest-path "$tool/Cargo.toml" -- "$vendor" "$out"
echo "gen-api: wrote $(ls "$out" | wc -l) files into src/api/generated from $vendor"
