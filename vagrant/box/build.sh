#!/usr/bin/env bash
# shellcheck disable=SC2012,SC2016  # ls lists file names this project makes; single quotes are expanded by the inner shell
# Builds the lab's Vagrant box locally, for the libvirt provider: no box registry needed.
#
#   vagrant/box/build.sh            print the path of the box, building it first when its inputs changed
#   vagrant/box/build.sh --force    rebuild even when a box of the same inputs is cached
#   vagrant/box/build.sh --hash     print only the hash of the inputs
#
# Debian 12 (debootstrap, minbase) with systemd, systemd-networkd, openssh-server, sudo, python3, socat,
# iproute2, iputils-ping and the Debian kernel; a `vagrant` user with the insecure public key that the
# installed vagrant package ships and passwordless sudo; pyroute2 (the release the collection requires, a
# wheel downloaded here from PyPI) in a venv at /opt/cnfs-netlab/venv, the guests' ansible_python_interpreter
# (Debian 12's python3-pyroute2 is 0.7.x, which the modules do not support: see docs/vagrant.md).
# The root file system is made without a loop device (`mke2fs -d`), the disk is that file system as a whole
# (/dev/vda, no partition table, no boot loader): the box carries the kernel and the initrd next to box.img,
# and its Vagrantfile boots them directly (vagrant-libvirt's kernel, initrd and cmd_line).
# SSH host keys are made at first boot, ed25519 and ecdsa only (an RSA key costs ~11 s under emulation).
#
# The box is cached under $CNFS_VAGRANT_CACHE (default ~/.cache/cnfs-netlab/vagrant) in a file named after
# the hash of its inputs (this directory's files and the versions below); older boxes are removed.
# Root is required (debootstrap, chroot). Mounts happen in a private mount namespace and vanish with it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SUITE=bookworm
MIRROR=${CNFS_VAGRANT_MIRROR:-http://deb.debian.org/debian}
PYROUTE2=$(sed -n 's/^pyroute2==//p' "$REPO/requirements.txt")
PYROUTE2=${PYROUTE2:-0.9.7}
VIRTUAL_SIZE_GB=8
PACKAGES=systemd-sysv,udev,dbus,kmod,procps,openssh-server,sudo,python3,python3-venv,socat,iproute2,iputils-ping,netbase,linux-image-cloud-amd64
CACHE=${CNFS_VAGRANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnfs-netlab/vagrant}

inputs_hash() {
  { printf '%s\n' "$SUITE" "$PYROUTE2" "$VIRTUAL_SIZE_GB" "$PACKAGES"
    (cd "$HERE" && find . -type f ! -name '*.swp' | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

HASH=$(inputs_hash)
BOX="$CACHE/boxes/cnfs-debian12-$HASH.box"
case "${1:-}" in
  --hash) echo "$HASH"; exit 0 ;;
  --force) rm -f "$BOX" ;;
  "") ;;
  *) echo "usage: $0 [--force|--hash]" >&2; exit 2 ;;
esac
if [ -s "$BOX" ]; then
  echo "$BOX"
  exit 0
fi
# From here on, stdout carries only the box's path (the caller reads it: box=$(build.sh)); everything the
# build prints (debootstrap, the chroot's setup, mke2fs) goes to stderr.
exec 3>&1 1>&2
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (debootstrap and chroot need it)" >&2; exit 1; }
for tool in debootstrap mke2fs qemu-img unshare; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing: run vagrant/deps.sh" >&2; exit 1; }
done
PUBKEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1 || true)
[ -n "$PUBKEY" ] || { echo "build.sh: vagrant's insecure public key not found: install vagrant (vagrant/deps.sh)" >&2; exit 1; }

mkdir -p "$CACHE/boxes" "$CACHE/debs" "$CACHE/wheels"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
start=$SECONDS
log() { printf 'build.sh [%3ds] %s\n' $((SECONDS - start)) "$*" >&2; }

# pyroute2 for the guests, downloaded here (the guests need no network to install it).
PY=python3
[ -x "$REPO/.venv/bin/python" ] && PY="$REPO/.venv/bin/python"
if ! ls "$CACHE/wheels/pyroute2-$PYROUTE2-"*.whl >/dev/null 2>&1; then
  log "downloading pyroute2==$PYROUTE2"
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE/wheels" "pyroute2==$PYROUTE2" 2>&1 |
    { grep -v 'is ignored: it is neither a file nor a directory' || true; }
fi
WHEEL=$(ls "$CACHE/wheels/pyroute2-$PYROUTE2-"*.whl | head -n1)

# Everything below runs in a private mount namespace: debootstrap's /proc and /sys mounts in the chroot go
# away with it, whatever happens.
export ROOT WORK MIRROR SUITE PACKAGES CACHE WHEEL PUBKEY VIRTUAL_SIZE_GB HERE
unshare --mount --propagation private bash -euo pipefail -c '
log() { printf "build.sh %s\n" "$*" >&2; }
log "debootstrap $SUITE ($PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debs" \
  "$SUITE" "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" "$ROOT/debootstrap/debootstrap.log" 2>/dev/null >&2; exit 1; }

log "configuring the guest"
cp -r --preserve=mode "$HERE/rootfs/." "$ROOT/"
install -m 0755 "$HERE/setup-guest.sh" "$ROOT/tmp/setup-guest.sh"
install -m 0644 "$PUBKEY" "$ROOT/tmp/vagrant.pub"
install -m 0644 "$WHEEL" "$ROOT/tmp/"
printf "#!/bin/sh\nexit 101\n" > "$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /bin/bash -euo pipefail /tmp/setup-guest.sh "/tmp/$(basename "$WHEEL")"
umount "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/tmp/setup-guest.sh" "$ROOT/tmp/vagrant.pub" "$ROOT"/tmp/*.whl
'

log "making the disk image"
KVER=$(ls "$ROOT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
mkdir -p "$WORK/box"
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/box/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/box/initrd.img"
mke2fs -q -t ext4 -L cnfs-root -d "$ROOT" "$WORK/root.raw" "${VIRTUAL_SIZE_GB}G"
qemu-img convert -O qcow2 "$WORK/root.raw" "$WORK/box/box.img"
rm -f "$WORK/root.raw"
cat > "$WORK/box/metadata.json" <<JSON
{"provider": "libvirt", "format": "qcow2", "virtual_size": $VIRTUAL_SIZE_GB}
JSON
cp "$HERE/Vagrantfile.box" "$WORK/box/Vagrantfile"
printf 'cnfs-netlab box %s: Debian %s, kernel %s, pyroute2 %s, built %s\n' \
  "$HASH" "$SUITE" "$KVER" "$PYROUTE2" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$WORK/box/info.txt"
tar -C "$WORK/box" -cf "$WORK/box.tar" metadata.json Vagrantfile info.txt vmlinuz initrd.img box.img
find "$CACHE/boxes" -name 'cnfs-debian12-*.box' ! -name "$(basename "$BOX")" -delete
mv "$WORK/box.tar" "$BOX"
log "built $BOX ($(du -h "$BOX" | cut -f1), kernel $KVER)"
echo "$BOX" >&3
