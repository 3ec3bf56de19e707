#!/usr/bin/env bash
# shellcheck disable=SC2012,SC2016  # ls lists file names this project makes; single quotes are expanded by the inner shell
# The Vagrant lab's helper: the box, libvirt in namespaces of its own, vagrant up with retries, consoles.
#
#   vagrant/lab.sh deps             install the host's packages (vagrant/deps.sh)
#   vagrant/lab.sh box              build the box when its inputs changed (cached) and add it to Vagrant
#   vagrant/lab.sh probe            print the libvirt driver to use here: kvm, or qemu when KVM is missing
#                                   or its guests do not run (this machine: a VM whose KVM guests hang)
#   vagrant/lab.sh ns-up            isolated mode: make the namespaces, start virtlogd and libvirtd in them
#   vagrant/lab.sh ns-down          isolated mode: stop everything in them, remove them and the lab's state
#   vagrant/lab.sh up [NODE...]     vagrant up, retried (a failed boot prints the serial console)
#   vagrant/lab.sh destroy          vagrant destroy -f, then clean stale box images from libvirt's pool
#   vagrant/lab.sh console [NODE]   print the serial console of the VMs
#   vagrant/lab.sh clean-pool       delete this box's images that no VM uses any more from libvirt's pool
#   vagrant/lab.sh run CMD...       run CMD with the lab's environment (in the namespaces when isolated)
#   vagrant/lab.sh env              print the lab's environment as shell assignments
#
# Isolated mode (CNFS_VAGRANT_ISOLATED=1; make test-vagrant uses it): libvirtd, virtlogd, their networks
# (vagrant-libvirt's management network 192.168.121.0/24 with its dnsmasq and NAT rules, the lab's
# 10.0.0.0/24) and the VMs live in a network namespace of their own (ip netns: $CNFS_VAGRANT_NS) and a
# mount namespace in which libvirt's directories (/etc/libvirt, /var/lib/libvirt, /run/libvirt,
# /var/log/libvirt, /var/cache/libvirt) are bind mounts of $CNFS_VAGRANT_STATE: nothing of the lab appears
# in the host's own namespaces, and a system libvirt, if any, is not touched. Vagrant, virsh and Ansible
# run inside (`run`). Processes are stopped by pid: the daemons by their recorded pids, then whatever else
# still runs in the lab's network namespace (qemu, dnsmasq, ssh masters), found by that namespace.
# Without it, the commands use the host's libvirt (qemu:///system) and the user's Vagrant as they are.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BOX_NAME=cnfs-netlab/debian12
ISOLATED=${CNFS_VAGRANT_ISOLATED:-0}
NS=${CNFS_VAGRANT_NS:-cnfs-vagrant}
CACHE=${CNFS_VAGRANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnfs-netlab/vagrant}
STATE=${CNFS_VAGRANT_STATE:-/var/tmp/cnfs-netlab-vagrant/$NS}
RUN=/run/cnfs-netlab-vagrant
MNTNS=$RUN/$NS.mnt
RETRIES=${CNFS_VAGRANT_RETRIES:-2}
LIBVIRT_DIRS=(/etc/libvirt /var/lib/libvirt /run/libvirt /var/log/libvirt /var/cache/libvirt)

export VAGRANT_CWD=$HERE
export VAGRANT_DEFAULT_PROVIDER=${VAGRANT_DEFAULT_PROVIDER:-libvirt}
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
export LIBVIRT_DEFAULT_URI=${LIBVIRT_DEFAULT_URI:-qemu:///system}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$REPO/.collections}
if [ "$ISOLATED" = 1 ]; then
  # The lab's own Vagrant home (the box) and machine state (which goes with the namespaces' libvirt).
  export VAGRANT_HOME=${VAGRANT_HOME:-$CACHE/vagrant.d}
  export VAGRANT_DOTFILE_PATH=${VAGRANT_DOTFILE_PATH:-$STATE/vagrant}
  export CNFS_VAGRANT_CONSOLE_DIR=${CNFS_VAGRANT_CONSOLE_DIR:-$STATE/console}
fi

log() { printf 'lab.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ns_exists() { [ -e "/run/netns/$NS" ] && [ -e "$MNTNS" ] && mountpoint -q "$MNTNS" 2>/dev/null; }

# Runs "$@" in the lab's namespaces (isolated mode), in the current directory; else as is.
run() {
  if [ "$ISOLATED" = 1 ]; then
    ns_exists || die "the lab's namespaces do not exist: run vagrant/lab.sh ns-up first"
    nsenter --net="/run/netns/$NS" --mount="$MNTNS" --wd="$PWD" -- "$@"
  else
    "$@"
  fi
}

# ------------------------------------------------------------------------------------------ box
box_dir() { echo "${VAGRANT_HOME:-$HOME/.vagrant.d}/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/libvirt"; }

cmd_box() {
  local box hash
  box=$("$HERE/box/build.sh")
  [ -f "$box" ] || die "vagrant/box/build.sh printed no box path: '$box'"
  hash=$(basename "$box" .box)
  hash=${hash##*-}
  if grep -qs "box $hash:" "$(box_dir)/info.txt"; then
    log "box $BOX_NAME is up to date ($hash)"
    return
  fi
  log "adding $box to Vagrant as $BOX_NAME"
  vagrant box add --force --name "$BOX_NAME" "$box" >/dev/null
}

# ------------------------------------------------------------------------------------------ KVM probe
# Boots the box's kernel under KVM without a root file system: a working KVM panics in a second or two
# ("VFS: Unable to mount root fs"); where KVM guests hang, the timeout says qemu. Cached per host boot.
cmd_probe() {
  if [ -n "${CNFS_VAGRANT_DRIVER:-}" ]; then echo "$CNFS_VAGRANT_DRIVER"; return; fi
  if [ ! -w /dev/kvm ]; then echo qemu; return; fi
  local boot cached kernel out rc=0
  boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
  cached="$CACHE/kvm-probe.$boot"
  if [ -s "$cached" ]; then cat "$cached"; return; fi
  mkdir -p "$CACHE"
  kernel=$(box_dir)/vmlinuz
  if [ ! -s "$kernel" ]; then
    kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
  fi
  [ -s "$kernel" ] || { echo qemu; return; }
  # QEMU's `-serial stdio` sets O_NONBLOCK on its stdin and, killed by the timeout (or aborting), leaves it
  # so: its stdin is a /dev/null of its own, never the caller's (shared) one, which every later ansible
  # command would find non-blocking and refuse to start with (tests/unit/vagrant/test_stdio.py).
  out=$(timeout -k 5 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 -nodefaults -display none \
          -no-reboot -serial stdio -kernel "$kernel" -append "console=ttyS0 panic=-1" </dev/null 2>&1) || rc=$?
  if grep -q 'Unable to mount root fs\|Kernel panic' <<<"$out"; then
    echo kvm | tee "$cached"
    return
  fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "KVM is there but a KVM guest did not boot in 20 s: using software emulation (qemu)"
  else
    log "KVM is there but QEMU failed under it (exit $rc: $(grep -m1 . <<<"$out")): using software emulation (qemu)"
  fi
  echo qemu | tee "$cached"
}

# ------------------------------------------------------------------------------------------ namespaces
write_libvirt_config() {
  local etc=$STATE/etc/libvirt
  mkdir -p "$etc"
  cat > "$etc/libvirtd.conf" <<CONF
# cnfs.netlab: the lab's own libvirtd (vagrant/lab.sh), inside its namespaces.
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
  cat > "$etc/qemu.conf" <<CONF
# cnfs.netlab: qemu runs as root inside the lab's namespaces, without security driver, cgroups or
# per-VM mount namespaces (this host may run neither systemd nor AppArmor).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
CONF
  # Debian's libvirtd parses its built-in qemu user and group (libvirt-qemu, kvm) before it reads qemu.conf;
  # libvirt-daemon-system would create them on the host. The lab adds them to copies of /etc/passwd and
  # /etc/group that only its mount namespace sees.
  cp /etc/passwd "$STATE/etc/passwd"
  cp /etc/group "$STATE/etc/group"
  getent passwd libvirt-qemu >/dev/null ||
    echo "libvirt-qemu:x:64055:64055:libvirt qemu (cnfs.netlab lab namespace only):/var/lib/libvirt:/usr/sbin/nologin" \
      >> "$STATE/etc/passwd"
  getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >> "$STATE/etc/group"
  getent group kvm >/dev/null || echo "kvm:x:64054:" >> "$STATE/etc/group"
  : > "$etc/virtlogd.conf"
  : > "$etc/network.conf"
  : > "$etc/libvirt.conf"
}

ns_pids() {  # pids of every process in the lab's network namespace
  local want pid
  want=$(stat -L -c %i "/run/netns/$NS" 2>/dev/null) || return 0
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$want" ] && echo "$pid"
  done
  return 0
}

start_daemon() {  # name, then the command; records the pid that the daemon writes
  local name=$1 pidfile=$RUN/$NS.$1.pid
  shift
  rm -f "$pidfile"
  run "$@" --daemon --pid-file="$pidfile"
  for _ in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
  [ -s "$pidfile" ] || die "$name did not start (log: $STATE/log/libvirt/)"
  log "$name started in the lab's namespaces, pid $(cat "$pidfile")"
}

cmd_ns_up() {
  [ "$ISOLATED" = 1 ] || die "ns-up is for isolated mode (CNFS_VAGRANT_ISOLATED=1)"
  [ "$(id -u)" = 0 ] || die "run as root: the namespaces and libvirtd need it"
  if ns_exists; then
    log "the lab's namespaces exist already ($NS): run vagrant/lab.sh ns-down first to start afresh"
    return 1
  fi
  mkdir -p "$RUN"
  # A mount namespace can be kept in a file only on a mount with private propagation.
  if ! mountpoint -q "$RUN"; then mount --bind "$RUN" "$RUN"; fi
  mount --make-private "$RUN"
  rm -rf "$STATE"
  mkdir -p "$STATE"/{etc,lib,run,log,cache}/libvirt "$STATE/console" "$STATE/vagrant"
  write_libvirt_config
  # Mount points for the bind mounts (empty directories; the host's libvirt, if any, has them already).
  mkdir -p "${LIBVIRT_DIRS[@]}"
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  touch "$MNTNS"
  unshare --mount="$MNTNS" --propagation private \
    bash -euo pipefail -c '
      mount --bind "$1/etc/libvirt" /etc/libvirt
      mount --bind "$1/lib/libvirt" /var/lib/libvirt
      mount --bind "$1/run/libvirt" /run/libvirt
      mount --bind "$1/log/libvirt" /var/log/libvirt
      mount --bind "$1/cache/libvirt" /var/cache/libvirt
      mount --bind "$1/etc/passwd" /etc/passwd
      mount --bind "$1/etc/group" /etc/group' _ "$STATE"
  start_daemon virtlogd virtlogd
  start_daemon libvirtd libvirtd
  for _ in $(seq 100); do
    run virsh -q version >/dev/null 2>&1 && break
    sleep 0.2
  done
  run virsh -q version >/dev/null || die "libvirtd does not answer (log: $STATE/log/libvirt/libvirtd.log)"
  log "libvirt is up in network namespace $NS (state: $STATE)"
}

stop_pid() {  # pid, name: SIGTERM, then SIGKILL after 10 s
  local pid=$1 name=$2
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_ns_down() {
  [ "$ISOLATED" = 1 ] || die "ns-down is for isolated mode (CNFS_VAGRANT_ISOLATED=1)"
  local name pid pidfile want
  if ns_exists && [ -s "$RUN/$NS.libvirtd.pid" ] && kill -0 "$(cat "$RUN/$NS.libvirtd.pid")" 2>/dev/null; then
    for name in $(run timeout 30 virsh -q list --all --name 2>/dev/null); do
      run timeout 30 virsh -q destroy "$name" >/dev/null 2>&1 || true
      run timeout 30 virsh -q undefine "$name" >/dev/null 2>&1 || true
    done
    for name in $(run timeout 30 virsh -q net-list --all --name 2>/dev/null); do
      run timeout 30 virsh -q net-destroy "$name" >/dev/null 2>&1 || true
      run timeout 30 virsh -q net-undefine "$name" >/dev/null 2>&1 || true
    done
  fi
  want=$(stat -L -c %i "/run/netns/$NS" 2>/dev/null || true)
  for name in libvirtd virtlogd; do
    pidfile=$RUN/$NS.$name.pid
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Only the daemon this lab started: the recorded pid, still in the lab's network namespace.
    if [ -n "$want" ] && [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$want" ]; then
      stop_pid "$pid" "$name"
    fi
    rm -f "$pidfile"
  done
  for pid in $(ns_pids); do stop_pid "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo process)"; done
  if mountpoint -q "$MNTNS" 2>/dev/null; then umount "$MNTNS"; fi
  rm -f "$MNTNS"
  if [ -e "/run/netns/$NS" ]; then ip netns del "$NS"; fi
  rm -rf "$STATE"
  # $RUN may hold other labs' namespaces (another CNFS_VAGRANT_NS): removed only when empty.
  if [ -d "$RUN" ] && [ -z "$(ls -A "$RUN")" ]; then
    if mountpoint -q "$RUN"; then umount "$RUN"; fi
    rmdir "$RUN"
  fi
  log "the lab's namespaces and state are gone"
}

# ------------------------------------------------------------------------------------------ VMs
cmd_console() {
  local dir=${CNFS_VAGRANT_CONSOLE_DIR:-} f lines=${CNFS_VAGRANT_CONSOLE_LINES:-60}
  if [ -z "$dir" ]; then log "no console files (CNFS_VAGRANT_CONSOLE_DIR unset): use virsh console"; return; fi
  for f in "$dir"/*.log; do
    [ -e "$f" ] || continue
    if [ $# -gt 0 ] && [[ " $* " != *" $(basename "$f" .log) "* ]]; then continue; fi
    printf '\n===== serial console of %s (last %s lines of %s)\n' "$(basename "$f" .log)" "$lines" "$f"
    tail -n "$lines" "$f" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'
  done
}

cmd_up() {
  export CNFS_VAGRANT_DRIVER=${CNFS_VAGRANT_DRIVER:-$(cmd_probe)}
  local attempt
  for attempt in $(seq "$((RETRIES + 1))"); do
    log "vagrant up (driver $CNFS_VAGRANT_DRIVER, attempt $attempt)"
    # (vagrant-libvirt's upload progress is one line per percent: dropped)
    if run vagrant up --provider=libvirt "$@" 2>&1 | tr '\r' '\n' | grep --line-buffered -v 'Progress: [0-9]*%\|^ *$'; then
      return 0
    fi
    log "vagrant up failed (attempt $attempt)"
    cmd_console "$@"
    if [ "$attempt" -le "$RETRIES" ]; then
      run vagrant destroy -f "$@" || true
      rm -f "${CNFS_VAGRANT_CONSOLE_DIR:-/nonexistent}"/*.log
    fi
  done
  return 1
}

cmd_destroy() {
  run vagrant destroy -f "$@"
  cmd_clean_pool
}

# vagrant-libvirt uploads an unversioned box into libvirt's pool as
# <name>_vagrant_box_image_0_<mtime of box.img>_box.img, once per build of the box, and never deletes it.
cmd_clean_pool() {
  local prefix=${BOX_NAME//\//-VAGRANTSLASH-}_vagrant_box_image_ current="" vol used
  if [ -e "$(box_dir)/box.img" ]; then
    current="${prefix}0_$(stat -c %Y "$(box_dir)/box.img")_box.img"
  fi
  run virsh -q pool-info default >/dev/null 2>&1 || return 0
  # Volumes in use: the backing files of every domain's disks.
  used=$(for d in $(run virsh -q list --all --name); do
           run virsh -q domblklist "$d" --details | awk '{print $4}' |
             while read -r disk; do [ -e "$disk" ] && run qemu-img info -U --backing-chain "$disk" 2>/dev/null; done
         done | sed -n 's/^image: //p')
  for vol in $(run virsh -q vol-list default | awk '{print $1}'); do
    case "$vol" in "$prefix"*) ;; *) continue ;; esac
    [ "$vol" = "$current" ] && continue
    if grep -q "/$vol\$" <<<"$used"; then continue; fi
    log "deleting stale box image $vol from libvirt's pool"
    run virsh -q vol-delete --pool default "$vol" >/dev/null
  done
}

cmd_env() {
  local v
  for v in VAGRANT_CWD VAGRANT_DEFAULT_PROVIDER VAGRANT_HOME VAGRANT_DOTFILE_PATH LIBVIRT_DEFAULT_URI \
           CNFS_VAGRANT_CONSOLE_DIR ANSIBLE_COLLECTIONS_PATH; do
    [ -n "${!v:-}" ] && printf '%s=%q\n' "$v" "${!v}"
  done
  printf 'CNFS_VAGRANT_DRIVER=%q\n' "${CNFS_VAGRANT_DRIVER:-$(cmd_probe)}"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  deps) exec "$HERE/deps.sh" "$@" ;;
  box) cmd_box ;;
  probe) cmd_probe ;;
  ns-up) cmd_ns_up ;;
  ns-down) cmd_ns_down ;;
  up) cmd_up "$@" ;;
  destroy) cmd_destroy "$@" ;;
  console) cmd_console "$@" ;;
  clean-pool) cmd_clean_pool ;;
  run) export CNFS_VAGRANT_DRIVER=${CNFS_VAGRANT_DRIVER:-$(cmd_probe)}; run "$@" ;;
  env) cmd_env ;;
  *) sed -n '3,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
