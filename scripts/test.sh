#!/bin/sh
# The whole test suite, from a fresh machine: dependencies, lint, build, unit and
# integration tests (as root: real namespaces, mounts, cgroups, containerd).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests make real containers)" >&2; exit 1; }
scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo build --release
cargo test --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
