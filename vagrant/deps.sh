#!/usr/bin/env bash
# Installs what the Vagrant lab needs on this host, from Debian's packages, idempotently (fast when done).
#
#   vagrant/deps.sh            install what is missing
#   vagrant/deps.sh --check    only say what is missing (exit 1 when something is)
#
# Deliberately NOT installed: libvirt-daemon-system and libvirt-daemon-config-network. They bring init
# scripts/units that start libvirtd in the host's own namespaces and autostart libvirt's `default` network
# (a bridge with 192.168.122.1 and NAT rules on the host). The project starts libvirtd itself, inside
# namespaces of its own (vagrant/lab.sh); users who want a system libvirt install those packages themselves
# (docs/vagrant.md).
set -euo pipefail

PACKAGES=(
  vagrant vagrant-libvirt
  libvirt-daemon libvirt-daemon-driver-qemu
  libvirt-clients
  qemu-system-x86 qemu-utils
  dnsmasq-base iptables
  debootstrap
  e2fsprogs util-linux openssh-client rsync
  python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "vagrant/deps.sh: missing packages: ${missing[*]}" >&2
  exit 1
fi
echo "vagrant/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
