#!/usr/bin/env bash
# Emulated nodes for the overlay integration test, built with plain `ip` (the test's own fixture).
#
#   lab.sh up PREFIX N     a switch namespace PREFIX-sw with bridge br0; per node i (1..N) a node namespace
#                          PREFIX-ni (eth0 10.0.0.i/24 on the switch, bridge cbr0 172.16.i.1/24, forwarding
#                          on, strict reverse-path filtering like a hardened host) and a container namespace
#                          PREFIX-ci (eth0 172.16.i.2/24, default route via 172.16.i.1).
#   lab.sh down PREFIX     stop the tunnel processes recorded under /run/cnfs-netlab/overlay/PREFIX-* (by pid),
#                          drop their sysctl journal entries (the journal and the overlay directory go when
#                          nothing else is left in them), delete the WireGuard keys of PREFIX-* nodes and
#                          every namespace called PREFIX-*.
#
# Nothing is done in the caller's own network namespace.
set -euo pipefail
action=$1
prefix=$2

if [ "$action" = down ]; then
  for pidfile in /run/cnfs-netlab/overlay/"$prefix"-*/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q ' cnfs-netlab-tunnel '; then
      kill "$pid" || true
    fi
  done
  rm -rf /run/cnfs-netlab/overlay/"$prefix"-*
  rmdir /run/cnfs-netlab/overlay 2>/dev/null || true
  # WireGuard keys of the test's nodes (the module's default key_file with netns: .../wireguard/<netns>/).
  rm -rf /etc/cnfs-netlab/wireguard/"$prefix"-*
  journal=/run/cnfs-netlab/sysctl-journal.json
  if [ -s "$journal" ]; then
    python3 - "$journal" "$prefix-" <<'PY'
import json, sys
path, prefix = sys.argv[1], sys.argv[2]
data = json.load(open(path))
entries = data.get("entries", {})
for key in [k for k in entries if k.startswith(prefix)]:
    del entries[key]
if entries:
    json.dump(data, open(path, "w"), indent=1, sort_keys=True)
else:  # the test made the journal (its nodes' sysctls): nothing of anyone else's is in it
    import os
    os.unlink(path)
    if os.path.exists(path + ".lock"):
        os.unlink(path + ".lock")
PY
  fi
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
    ip netns delete "$ns"
  done
  exit 0
fi

count=$3
ip netns add "$prefix-sw"
ip -n "$prefix-sw" link set lo up
ip -n "$prefix-sw" link add br0 type bridge
ip -n "$prefix-sw" link set br0 up
for i in $(seq 1 "$count"); do
  node=$prefix-n$i
  con=$prefix-c$i
  ip netns add "$node"
  ip netns add "$con"
  ip -n "$node" link set lo up
  ip -n "$con" link set lo up
  ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1
  ip -n "$node" link add eth0 type veth peer name "v$i" netns "$prefix-sw"
  ip -n "$prefix-sw" link set "v$i" master br0 up
  ip -n "$node" addr add "10.0.0.$i/24" dev eth0
  ip -n "$node" link set eth0 up
  ip -n "$node" link add cbr0 type bridge
  ip -n "$node" addr add "172.16.$i.1/24" dev cbr0
  ip -n "$node" link set cbr0 up
  ip -n "$node" link add vc type veth peer name eth0 netns "$con"
  ip -n "$node" link set vc master cbr0 up
  ip -n "$con" addr add "172.16.$i.2/24" dev eth0
  ip -n "$con" link set eth0 up
  ip -n "$con" route add default via "172.16.$i.1"
done
