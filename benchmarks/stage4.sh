#!/usr/bin/env bash
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Stage 4 of the talk built with plain `ip` commands on the nodes of a built-in lab: the benchmarks'
# baseline (benchmarks/run.py). It builds what `playbooks/overlay.yml` builds with the role defaults:
#   node i: bridge br0 with 172.16.<i-1>.1/24; containers con1..conC (veth<k>0 on br0, veth<k>1 in the
#   container with 172.16.<i-1>.<k+1>/24, default route via the bridge); net.ipv4.ip_forward=1,
#   net.ipv4.conf.all.rp_filter=2; and the overlay to every other node:
#     vxlan: vxlan0 (VNI 1, port 4789, learning off, VTEP MAC 02:cf:<underlay IPv4 bytes>, MTU 1450,
#            address 172.16.<i-1>.0/32), per peer a static FDB entry, a permanent neighbour and an
#            onlink route to its subnet (what flannel and cnfs.netlab.overlay do);
#     udp:   per peer a persistent TUN tun-<peer> (MTU 1472, 172.16.<i-1>.0/32, route to the peer's subnet)
#            and a socat carrying it in UDP datagrams to the peer's port 9000, started as the udp backend
#            did before it had its own tunnel process (unconnected, port-sharing UDP socket, 64 KiB
#            buffer; a shell script has no forwarder of its own);
#     talk:  the same TUN devices, with the talk's own socat: a connected UDP socket and socat's defaults
#            (`socat UDP:<peer>:9000,bind=<self>:9000 TUN,...`), the data plane benchmark's reference.
# Idempotent like a careful shell script: objects are created only when missing, addresses, routes,
# neighbours and FDB entries are `replace`d, a socat is started only when its pid file names no live one.
#
# Usage: stage4.sh [-l LAB] [-s STATE_DIR] [-b vxlan|udp|talk] [-c CONTAINERS] [-p] NODE=ADDRESS...
#   NODE=ADDRESS  every node of the lab in order (node i is the i-th argument) with its underlay IPv4
#                 address, e.g. node1=10.0.0.10 node2=10.0.0.20
#   -p            configure the nodes in parallel (one background job per node) instead of one by one
# Each node is entered once (util-linux nsenter into its net, mount and UTS namespaces) and this script
# runs there; inside, every object is one `ip` (or `bridge`, `sysctl`) command.
set -euo pipefail

LAB=netlab
STATE_DIR=/run/cnfs-netlab
BACKEND=vxlan
CONTAINERS=2
PARALLEL=0
UNDERLAY_MTU=1500
PORT_UDP=9000
PORT_VXLAN=4789

usage() {
  sed -n '/^# Usage:/,/^# runs there/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

subnet_of() { echo "172.16.$(($1 - 1))"; }                          # node index -> first three octets
vtep_mac() {                                                          # underlay IPv4 -> VTEP MAC
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  printf '02:cf:%02x:%02x:%02x:%02x' "$a" "$b" "$c" "$d"
}

# ----------------------------------------------------------------------------- inside one node
node_stage4() {
  local index=$1 self=$2 local_ip=$3
  shift 3
  local net mtu k ns hv cv i name addr pnet
  net=$(subnet_of "$index")
  if [ "$BACKEND" = vxlan ]; then mtu=$((UNDERLAY_MTU - 50)); else mtu=$((UNDERLAY_MTU - 28)); fi

  ip link show dev br0 >/dev/null 2>&1 || ip link add br0 type bridge
  ip addr replace "$net.1/24" dev br0
  ip link set dev br0 up
  for k in $(seq 1 "$CONTAINERS"); do
    ns=con$k hv=veth${k}0 cv=veth${k}1
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    ip link show dev "$hv" >/dev/null 2>&1 || ip link add "$hv" mtu "$mtu" type veth peer name "$cv" mtu "$mtu" netns "$ns"
    ip link set dev "$hv" mtu "$mtu" master br0 up
    ip -n "$ns" link set dev lo up
    ip -n "$ns" link set dev "$cv" mtu "$mtu" up
    ip -n "$ns" addr replace "$net.$((k + 1))/24" dev "$cv"
    ip -n "$ns" route replace default via "$net.1"
  done
  sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=2

  if [ "$BACKEND" = vxlan ]; then
    ip link show dev vxlan0 >/dev/null 2>&1 ||
      ip link add vxlan0 type vxlan id 1 local "$local_ip" dstport "$PORT_VXLAN" nolearning
    ip link set dev vxlan0 address "$(vtep_mac "$local_ip")" mtu "$mtu" up
    ip addr replace "$net.0/32" dev vxlan0
  else
    mkdir -p /run/cnfs-bench-stage4
  fi
  i=0
  for peer in "$@"; do
    i=$((i + 1))
    name=${peer%%=*} addr=${peer#*=}
    [ "$name" = "$self" ] && continue
    pnet=$(subnet_of "$i")
    if [ "$BACKEND" = vxlan ]; then
      bridge fdb replace "$(vtep_mac "$addr")" dev vxlan0 dst "$addr" self permanent
      ip neigh replace "$pnet.0" lladdr "$(vtep_mac "$addr")" dev vxlan0 nud permanent
      ip route replace "$pnet.0/24" via "$pnet.0" dev vxlan0 onlink
    else
      local dev=tun-$name pidfile=/run/cnfs-bench-stage4/tun-$name.pid
      ip link show dev "$dev" >/dev/null 2>&1 || ip tuntap add dev "$dev" mode tun
      sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" "net.ipv4.conf.$dev.rp_filter=2"
      ip link set dev "$dev" mtu "$mtu" up
      ip addr replace "$net.0/32" dev "$dev"
      ip route replace "$pnet.0/24" dev "$dev" scope link
      if ! { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
        if [ "$BACKEND" = talk ]; then
          setsid socat "UDP:$addr:$PORT_UDP,bind=$local_ip:$PORT_UDP" "TUN,tun-name=$dev,tun-type=tun,iff-no-pi" \
            </dev/null >>"/run/cnfs-bench-stage4/$dev.log" 2>&1 &
        else
          setsid socat -d -b 65536 "UDP4-DATAGRAM:$addr:$PORT_UDP,bind=$local_ip:$PORT_UDP,reuseport" \
            "TUN,tun-name=$dev,tun-type=tun,iff-no-pi" </dev/null >>"/run/cnfs-bench-stage4/$dev.log" 2>&1 &
        fi
        echo $! >"$pidfile"
      fi
    fi
  done
}

# ----------------------------------------------------------------------------- on the host
if [ "${1:-}" = --inside ]; then
  shift
  BACKEND=$1 CONTAINERS=$2
  shift 2
  node_stage4 "$@"
  exit 0
fi

while getopts 'l:s:b:c:ph' opt; do
  case $opt in
    l) LAB=$OPTARG ;;
    s) STATE_DIR=$OPTARG ;;
    b) BACKEND=$OPTARG ;;
    c) CONTAINERS=$OPTARG ;;
    p) PARALLEL=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
case $BACKEND in vxlan | udp | talk) ;; *) echo "stage4.sh: backend must be vxlan, udp or talk, not $BACKEND" >&2; exit 2 ;; esac

script=$(readlink -f "$0")
pids=()
index=0
for node in "$@"; do
  index=$((index + 1))
  name=${node%%=*} addr=${node#*=}
  dir=$STATE_DIR/$LAB/$name
  if [ ! -e "$dir/net" ]; then
    echo "stage4.sh: $name is not a node of lab $LAB ($dir/net is missing): build the lab first" >&2
    exit 1
  fi
  run=(nsenter "--net=$dir/net" "--mount=$dir/mnt" "--uts=$dir/uts" -- bash "$script" --inside
    "$BACKEND" "$CONTAINERS" "$index" "$name" "$addr" "$@")
  if [ "$PARALLEL" = 1 ]; then
    "${run[@]}" &
    pids+=($!)
  else
    "${run[@]}"
  fi
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
