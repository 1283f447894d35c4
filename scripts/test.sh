#!/bin/sh
# The whole test suite, from a fresh machine: dependencies, lint, build, unit and
# integration tests (as root: real namespaces, mounts, cgroups, containerd), for the full
# build and for the runtime-only feature set.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests make real containers)" >&2; exit 1; }
scripts/install-deps.sh
RUNTIME_ONLY="--no-default-features --features runtime"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# shellcheck disable=SC2086
cargo clippy $RUNTIME_ONLY --all-targets -- -D warnings
cargo build --release
# The runtime-only static binary, in its own target dir so it never replaces the full one.
# shellcheck disable=SC2086
cargo build --release $RUNTIME_ONLY --target-dir target/runtime-only
ls -l target/x86_64-unknown-linux-gnu/release/ocibox \
    target/runtime-only/x86_64-unknown-linux-gnu/release/ocibox
cargo test --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
# shellcheck disable=SC2086
cargo test $RUNTIME_ONLY --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
