#!/usr/bin/env bash
# Installs the system packages the lab and the tests need, with apt, only
# when something is missing. Safe to run on every make invocation.
set -euo pipefail

packages=(openvswitch-switch etcd-server iproute2 iputils-ping arping ethtool nftables iptables conntrack tcpdump curl iperf3 protobuf-compiler pmacct)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts etcd and OVS as system services on install where it can;
# the lab runs its own instances, so the system ones must not hold ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
