#!/usr/bin/env bash
# Installs the Debian 12 packages Ordo needs to build, test and run its demo.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "ordo: run as root (installs packages, creates network namespaces)" >&2
    exit 1
fi
pkgs=(
    gcc clang clang-format libclang-rt-14-dev pkg-config meson ninja-build python3 git ca-certificates
    dpdk dpdk-dev libdpdk-dev liburing-dev libjemalloc-dev libcriterion-dev
    libsodium-dev libpcap-dev libxdp-dev libbpf-dev
    iproute2 iputils-ping ethtool nftables tcpdump tcpreplay procps util-linux kmod lua5.3 gnuplot-nox
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "ordo: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
