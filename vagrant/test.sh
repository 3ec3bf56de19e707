#!/usr/bin/env bash
# shellcheck disable=SC2012,SC2016  # ls lists file names this project makes; single quotes are expanded by the inner shell
# make test-vagrant: the talk's four stages on real VMs, in libvirt namespaces of the project's own.
#
#   deps -> box (cached) -> stdio regression test -> libvirt in the lab's namespaces -> vagrant up (retried) ->
#   per stage: apply + verify (one ansible-playbook run) -> teardown of that stage + check that the nodes
#   are clean (one run) (network_namespace, single_node, multi_node, overlay with udp and vxlan)
#   -> molecule scenario `vagrant` (overlay wireguard, the backend this machine's kernel lacks: converge,
#   idempotence, check mode, testinfra, cleanup) + check that the nodes are clean
#   -> optionally the overlay module's integration target on a VM (backend wireguard, about 13 minutes) -> vagrant destroy -> namespaces and state removed (also on failure or
#   interrupt: trap), with the VMs' serial consoles printed on failure, and a table of timings at the end.
#
# Environment: CNFS_VAGRANT_BACKENDS (overlay backends for the stage loop, default "udp vxlan", plus
# wireguard when the molecule scenario, which covers wireguard, is skipped), CNFS_VAGRANT_MOLECULE=0 (skip
# the molecule scenario), CNFS_VAGRANT_WG_TARGET=1 (also run the overlay module's integration target with
# backend wireguard on node1: its whole life cycle, asserted on the kernel; about 13 minutes here),
# CNFS_VAGRANT_KEEP=1 (leave the lab up at the end, for debugging: vagrant/lab.sh ns-down removes it),
# and those of vagrant/lab.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
export CNFS_VAGRANT_ISOLATED=1
export CNFS_VAGRANT_NS=${CNFS_VAGRANT_NS:-cnfs-vagrant}
export CNFS_VAGRANT_STATE=${CNFS_VAGRANT_STATE:-/var/tmp/cnfs-netlab-vagrant/$CNFS_VAGRANT_NS}
[ -x "$REPO/.venv/bin/ansible-playbook" ] && export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH=$REPO/.collections
# Ansible over SSH to emulated VMs: one SSH master per VM for the whole run, no compression (the guests'
# CPU is the bottleneck), no colour escapes in logs.
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=900s"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0
MOLECULE=${CNFS_VAGRANT_MOLECULE:-1}
if [ "$MOLECULE" = 1 ]; then
  BACKENDS=${CNFS_VAGRANT_BACKENDS:-udp vxlan}
else
  BACKENDS=${CNFS_VAGRANT_BACKENDS:-udp vxlan wireguard}
fi
LAB=$HERE/lab.sh

# shellcheck source=vagrant/steps.sh
. "$HERE/steps.sh"
playbook() { "$LAB" run ansible-playbook -i inventory/vagrant "$@"; }

finish() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  exec </dev/null
  sane_stdio "before the tier's cleanup"
  if [ "$rc" != 0 ]; then
    printf '\n===== FAILED%s (exit %s)\n' "${CURRENT:+ in step: $CURRENT}" "$rc"
    if [ -d "$CNFS_VAGRANT_STATE/console" ]; then
      CNFS_VAGRANT_CONSOLE_LINES=80 "$LAB" console
      "$LAB" run vagrant status 2>/dev/null
    fi
  fi
  if [ "${CNFS_VAGRANT_KEEP:-0}" = 1 ]; then
    echo "CNFS_VAGRANT_KEEP=1: the lab stays up; remove it with CNFS_VAGRANT_ISOLATED=1 vagrant/lab.sh ns-down"
  else
    local t=$SECONDS
    "$LAB" ns-down
    TIMES+=("$(printf '%-34s %4d s' "namespaces down" $((SECONDS - t)))")
  fi
  printf '\n===== timings\n'
  printf '%s\n' "${TIMES[@]}"
  printf '%-34s %4d s\n' "total" $((SECONDS - START))
  if [ "$rc" = 0 ]; then echo "test-vagrant: PASSED"; else echo "test-vagrant: FAILED"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [ -e "/run/netns/$CNFS_VAGRANT_NS" ]; then
  echo "A lab from an earlier run is still there ($CNFS_VAGRANT_NS): removing it first"
  "$LAB" ns-down
fi

step "deps" "$LAB" deps
step "box (cached unless changed)" "$LAB" box
# The KVM probe (QEMU really run, on a probe cache of the test's own) leaves the caller's stdin blocking:
# on a new machine it once left it non-blocking, and every ansible command of the tier refused to start.
step "stdio regression test" env CNFS_REQUIRE_PROBE_TEST=1 \
  pytest -q -p no:cacheprovider tests/unit/vagrant/test_stdio.py
step "libvirt in namespaces" "$LAB" ns-up
echo "libvirt driver: $("$LAB" probe </dev/null)"
step "vagrant up" "$LAB" up

# The inventory, once live from `vagrant ssh-config`, then from its saved output (each vagrant call costs
# seconds).
step "inventory" bash -c '
  "$1" run inventory/vagrant/vagrant.py --list > "$2/inventory.json"
  python3 -c "import json,sys; inv=json.load(open(sys.argv[1])); assert inv[\"nodes\"][\"hosts\"], inv; print(\"nodes:\", *inv[\"nodes\"][\"hosts\"])" "$2/inventory.json"
  "$1" run vagrant ssh-config > "$2/ssh-config"' _ "$LAB" "$CNFS_VAGRANT_STATE"
export CNFS_VAGRANT_SSH_CONFIG=$CNFS_VAGRANT_STATE/ssh-config

# The guests' kernel has what the stages and the overlay backends need.
step "guest kernel modules" "$LAB" run ansible -i inventory/vagrant nodes -m ansible.builtin.command \
  -a "modprobe -a vxlan wireguard geneve ip_gre bridge veth tun"

# Each stage is applied and verified in one ansible-playbook run, then torn down (playbooks/teardown.yml removes
# what the apply recorded on the node, no setting needed) and the nodes must be clean, read with `ip`
# (vagrant/check_clean.yml), again in one run. Every ansible-playbook run costs seconds of controller start.
for stage in network_namespace single_node multi_node; do
  step "$stage + verify" playbook "playbooks/$stage.yml" playbooks/verify.yml -e "verify_stage=$stage"
  step "$stage teardown + clean" playbook playbooks/teardown.yml vagrant/check_clean.yml
done
for backend in $BACKENDS; do
  step "overlay $backend + verify" playbook playbooks/overlay.yml playbooks/verify.yml \
    -e verify_stage=overlay -e "cnfs_netlab_backend=$backend"
  step "overlay $backend teardown + clean" playbook playbooks/teardown.yml vagrant/check_clean.yml
done
# The overlay module's own integration target (check mode, diff, idempotence, keys, peers, repair, removal,
# asserted on the kernel's state) with the backend this machine's kernel lacks, on one VM: the target's
# nodes are namespaces inside it. (udp and vxlan: make test-integration runs the same target on this
# machine's kernel.)
if [ "${CNFS_VAGRANT_WG_TARGET:-0}" = 1 ]; then
  step "overlay module target (wireguard)" playbook tests/integration/targets/overlay_module/vagrant.yml \
    -e '{"overlay_module_backends": ["wireguard"], "overlay_module_validation": false}'
fi
if [ "$MOLECULE" = 1 ]; then
  step "molecule scenario vagrant (wireguard)" "$LAB" run molecule test -s vagrant
  step "clean after molecule" playbook vagrant/check_clean.yml
fi
if [ "${CNFS_VAGRANT_KEEP:-0}" != 1 ]; then
  step "vagrant destroy" "$LAB" destroy
fi
