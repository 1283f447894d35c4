#!/bin/sh
# Install the Debian packages ocibox's tests and benchmarks use; only what is missing.
# Idempotent: a second run installs nothing.
set -eu
PKGS="runc crun containerd containernetworking-plugins busybox-static bats hyperfine skopeo umoci docker-registry mmdebstrap apache2-utils openssl jq iproute2 util-linux procps podman uidmap slirp4netns docker.io curl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Debian starts these services on install; the tests start their own private instances.
for svc in containerd docker-registry docker docker.socket; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
rustup component add rustfmt clippy >/dev/null 2>&1 || true
