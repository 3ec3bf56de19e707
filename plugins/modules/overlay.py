#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay
short_description: Manage this node's end of an overlay network between nodes (udp/socat or vxlan)
version_added: 0.1.0
description:
  - Joins the container subnets of several nodes over their underlay network, stage 4 of the talk
    "Container Networking From Scratch". Run it on every node of the play with the same O(peers) list
    (the whole inventory; the node's own entry, recognised by its address O(local), is skipped).
  - B(udp) (the default) is the talk's socat UDP/TUN tunnel made robust, for any number of nodes. Per peer,
    one persistent TUN device C(<name>-<peer name>) is created through C(/dev/net/tun) before any process
    touches it, with IPv6 disabled before it is up (no router solicitation ever leaves it), loose
    reverse-path filtering (C(rp_filter=2)), the address C(<subnet network address>/32), its MTU and a route
    to the peer's subnet. A supervised C(socat) per device attaches to it and carries its packets in UDP
    datagrams to the peer's O(port); all the node's socat processes share that port (C(SO_REUSEPORT)) on
    unconnected sockets, so ICMP errors (a peer that is not up yet) never stop them.
  - The pid of each socat is kept in C(/run/cnfs-netlab/overlay/[<netns>/]<device>.pid) and its output in
    C(<device>.log) beside it. A run that finds the process dead (or the device gone) restarts it and reports
    a change. Removing a tunnel stops its process by that pid.
  - B(vxlan) builds one VXLAN device the way flannel does, with learning off, a VTEP MAC derived from the underlay
    address (C(02:cf) followed by the four bytes of the IPv4 address), the address
    C(<subnet network address>/32), and per peer a static FDB entry (peer VTEP MAC -> peer underlay address),
    a permanent neighbour entry (peer VTEP address -> peer VTEP MAC) and an onlink route to the peer's
    subnet via the peer's VTEP address (the network address of its subnet). Entries of peers that are no
    longer listed are deleted.
  - B(wireguard) is validated and then refused with a clear message; it is not implemented in this release.
  - The MTU of the overlay devices defaults to the underlay MTU minus the real overhead (udp 28 bytes =
    IPv4 20 + UDP 8, socat runs without the TUN packet-info header; vxlan 50 bytes), so full-size packets
    are never fragmented on the underlay.
  - Routes and sysctls are managed through the collection's route and sysctl models (the sysctl journal
    records the original values; removal restores them).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  backend:
    description:
      - How packets travel between the nodes.
      - C(wireguard) fails with a message that says whether the kernel has WireGuard at all.
    type: str
    choices: [udp, vxlan, wireguard]
    default: udp
  name:
    description:
      - For C(vxlan), the name of the device (default C(vxlan0)).
      - For C(udp), the prefix of the tunnel devices, one per peer, named C(<name>-<peer name>) (default
        C(tun), giving for example C(tun-node2)); it must not contain C(-), and C(<name>-<peer name>) must fit
        the 15 bytes Linux allows.
      - Devices with these names that this module did not create are never touched; the run fails instead.
    type: str
  local:
    description:
      - This node's underlay IPv4 address. It must be an address of the node (in O(netns) when given).
      - Required when O(state=present).
    type: str
  subnet:
    description:
      - This node's container subnet, IPv4 in CIDR form, for example C(172.16.1.0/24).
      - Its network address (C(172.16.1.0)) becomes the node's VTEP address on the overlay devices.
      - Required when O(state=present).
    type: str
  peers:
    description:
      - The nodes of the overlay. The entry whose O(peers[].address) equals O(local) is this node and is
        skipped (its subnet must equal O(subnet)).
      - Peers that disappear from the list are removed from this node on the next run.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The peer's name; for C(udp) it names the tunnel device C(<name>-<peer name>).
        type: str
        required: true
      address:
        description: The peer's underlay IPv4 address.
        type: str
        required: true
      subnet:
        description: The peer's container subnet (IPv4 CIDR). Subnets must not overlap.
        type: str
        required: true
  port:
    description:
      - UDP port of the tunnels on every node.
      - Default C(9000) for C(udp) (the talk's), C(4789) for C(vxlan) (the IANA VXLAN port, which NIC offloads
        recognise; flannel uses the Linux legacy port 8472, give O(port=8472) to talk to flannel nodes).
    type: int
  vni:
    description: The VXLAN network identifier (0-16777215). Only for C(vxlan).
    type: int
  mtu:
    description:
      - MTU of the overlay devices. Default the smallest MTU of the underlay devices towards the peers
        (or of O(underlay_dev)) minus the overhead, 28 for C(udp), 50 for C(vxlan).
      - A larger value makes the underlay fragment full-size packets.
    type: int
  underlay_dev:
    description:
      - The device that carries the underlay. Default the devices the kernel routes the peers' addresses
        through.
      - For C(vxlan) it also binds the VXLAN device to it (C(dev) of C(ip link add type vxlan)).
    type: str
  state:
    description:
      - C(present) builds this node's end of the overlay; C(absent) removes every device of the overlay
        called O(name) (with its routes, FDB and neighbour entries), stops its processes and restores the
        sysctls it changed.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root. The C(udp) backend needs C(socat) on the node and C(/dev/net/tun).
  - IPv4 only (underlay and container subnets).
  - The C(udp) tunnels are neither authenticated nor encrypted, like the talk's; anyone who can send UDP to
    O(port) of a node can inject packets into its container network. Use it in a lab.
  - The overlay does not enable IP forwarding on the node; the node must forward between its container
    bridge and the overlay devices (C(net.ipv4.ip_forward=1), see M(cnfs.netlab.sysctl)).
  - Containers keep their own MTU; give their interfaces the overlay MTU (returned as RV(overlay)) to avoid
    path-MTU discovery on the first large packets.
requirements:
  - pyroute2 >= 0.9
  - socat (backend udp)
seealso:
  - module: cnfs.netlab.route
  - module: cnfs.netlab.sysctl
"""

EXAMPLES = r"""
- name: Join the nodes of the play with the talk's UDP tunnels (every node gets the same list)
  cnfs.netlab.overlay:
    local: "{{ underlay_address }}"
    subnet: "{{ container_subnet }}"
    peers:
      - {name: node1, address: 192.0.2.11, subnet: 172.16.1.0/24}
      - {name: node2, address: 192.0.2.12, subnet: 172.16.2.0/24}

- name: The same with VXLAN, on emulated node node1 (a network namespace)
  cnfs.netlab.overlay:
    netns: node1
    backend: vxlan
    local: 10.0.0.1
    subnet: 172.16.1.0/24
    peers:
      - {name: node1, address: 10.0.0.1, subnet: 172.16.1.0/24}
      - {name: node2, address: 10.0.0.2, subnet: 172.16.2.0/24}
      - {name: node3, address: 10.0.0.3, subnet: 172.16.3.0/24}

- name: Remove the udp overlay of node1
  cnfs.netlab.overlay:
    netns: node1
    state: absent
"""

RETURN = r"""
overlay:
  description:
    - This node's end of the overlay after the run; empty when absent.
    - For C(udp), C(tunnels) maps each device to its peer, the socat endpoints, MTU, addresses, routes,
      IPv6 and reverse-path settings and whether its process runs.
    - For C(vxlan), the device's settings, C(fdb) (peer VTEP MAC -> underlay address), C(neighbours)
      (peer VTEP address -> MAC) and C(routes) (peer subnet -> peer VTEP address).
  returned: always
  type: dict
  sample:
    backend: vxlan
    name: vxlan0
    vni: 1
    local: 10.0.0.1
    port: 4789
    learning: false
    underlay_dev: null
    mac: "02:cf:0a:00:00:01"
    mtu: 1450
    up: true
    addresses: [172.16.1.0/32]
    fdb: {"02:cf:0a:00:00:02": 10.0.0.2}
    neighbours: {172.16.2.0: "02:cf:0a:00:00:02"}
    routes: {172.16.2.0/24: 172.16.2.0}
pids:
  description: For C(udp), the pid of the socat of each tunnel device (as recorded in its pid file).
  returned: when backend is udp and the overlay is present
  type: dict
  sample: {tun-node2: 4242, tun-node3: 4243}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._args import OVERLAY_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import OverlayResource
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_module


def main() -> None:
    module = AnsibleModule(**OVERLAY_SPEC, supports_check_mode=True)
    try:
        resource = OverlayResource(dict(module.params))
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    run_module(module, [resource])


if __name__ == "__main__":
    main()
