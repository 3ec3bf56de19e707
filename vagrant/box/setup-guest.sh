#!/usr/bin/env bash
# Runs inside the box's chroot (vagrant/box/build.sh): the vagrant user, services, pyroute2, the initrd,
# and the clean-up that makes every VM of the box its own machine. Argument: the pyroute2 wheel.
set -euo pipefail
wheel=$1

useradd --create-home --shell /bin/bash --user-group vagrant
install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
install -m 0600 -o vagrant -g vagrant /tmp/vagrant.pub /home/vagrant/.ssh/authorized_keys
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant

# Host keys: each VM makes its own at first boot (cnfs-ssh-hostkeys.service).
rm -f /etc/ssh/ssh_host_*
systemctl enable -q systemd-networkd.service cnfs-ssh-hostkeys.service ssh.service
# Units a lab VM does not need: under software emulation every unit at boot costs seconds.
systemctl mask -q systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer systemd-binfmt.service systemd-pstore.service \
  dev-hugepages.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
  modprobe@drm.service modprobe@efi_pstore.service modprobe@fuse.service modprobe@loop.service \
  modprobe@dm_mod.service
systemctl set-default -q multi-user.target

# The modules' Python: pyroute2 in a venv (ansible_python_interpreter of the inventory).
python3 -m venv /opt/cnfs-netlab/venv
/opt/cnfs-netlab/venv/bin/python -m pip install -q --no-index --no-cache-dir --disable-pip-version-check "$wheel"
/opt/cnfs-netlab/venv/bin/python -c 'import pyroute2; print("pyroute2", pyroute2.__version__)'

update-initramfs -u -k all

# Every VM its own machine-id (and so its own DHCP client, journal and IPv6 identity).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /usr/share/info/* \
  /var/cache/debconf/*-old /var/log/*.log /var/log/apt/* /root/.cache
