#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay
short_description: Manage this node's end of an overlay network between nodes (udp, vxlan or wireguard)
version_added: 0.1.0
description:
  - Joins the container subnets of several nodes over their underlay network, stage 4 of the talk
    "Container Networking From Scratch". Run it on every node of the play with the same O(peers) list
    (the whole inventory; the node's own entry, recognised by its address O(local), is skipped).
  - B(udp) (the default) is the talk's user-space UDP/TUN tunnel made robust, for any number of nodes. Per peer,
    one persistent TUN device C(<name>-<peer name>) is created through C(/dev/net/tun) before any process
    touches it, with IPv6 disabled before it is up (no router solicitation ever leaves it), loose
    reverse-path filtering (C(rp_filter=2)), the address C(<subnet network address>/32), its MTU and a route
    to the peer's subnet. A supervised tunnel process per device (the node's own Python, running a forwarder
    of a few lines that the module pipes into it; the talk used socat) attaches to it and carries its packets
    in UDP datagrams to the peer's O(port). All the node's tunnel processes share that port
    (C(SO_REUSEPORT)); each connects its socket to its peer, so it gets only that peer's datagrams, and an
    ICMP error (a peer that is not up yet) only drops one packet, it never stops the process.
  - The pid of each tunnel process is kept in C(/run/cnfs-netlab/overlay/[<netns>/]<device>.pid) and its output in
    C(<device>.log) beside it. A run that finds the process dead (or the device gone) restarts it and reports
    a change. Removing a tunnel stops its process by that pid.
  - B(vxlan) builds one VXLAN device the way flannel does, with learning off, a VTEP MAC derived from the underlay
    address (C(02:cf) followed by the four bytes of the IPv4 address), the address
    C(<subnet network address>/32), and per peer a static FDB entry (peer VTEP MAC -> peer underlay address),
    a permanent neighbour entry (peer VTEP address -> peer VTEP MAC) and an onlink route to the peer's
    subnet via the peer's VTEP address (the network address of its subnet). Entries of peers that are no
    longer listed are deleted.
  - B(wireguard) encrypts ("just add encryption and you have your own VPN", as the talk says). One WireGuard
    device (default C(wg0)) with the address C(<subnet network address>/32), listening on O(port), and per peer
    its O(peers[].public_key), its endpoint C(<peer address>:<port>), its allowed IPs (the peer's subnet, which
    holds its VTEP address, and the peer's underlay address as a /32, because a peer node answers a container of
    this node through the tunnel from that address and WireGuard drops packets from sources it does not allow)
    and a route to the peer's subnet through the device. Peers no longer listed are removed from the device.
  - The private key is made on the node (X25519 in pure Python, like C(wg genkey)) and never leaves it; it is
    kept in O(key_file) (mode C(0600), directory C(0700); the format of C(wg genkey), so C(wg pubkey) reads
    it), handed to the kernel, and compared through its public key; it is never returned, shown in a diff or
    logged. Only the public key travels; the module returns it as RV(public_key). O(state=key) only makes sure
    the key exists and returns its public key, so that a play can first collect every node's public key and
    then build the overlay with them (the C(overlay) role does this).
  - The MTU of the overlay devices defaults to the underlay MTU minus the real overhead (udp 28 bytes =
    IPv4 20 + UDP 8, the TUN carries no packet-info header; vxlan 50 bytes; wireguard 60 bytes =
    IPv4 20 + UDP 8 + WireGuard 32), so full-size packets are never fragmented on the underlay.
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
      - C(wireguard) needs a kernel with WireGuard (Linux 5.6 or later with C(CONFIG_WIREGUARD)); on a kernel
        without it the module fails with a clear message before any change.
    type: str
    choices: [udp, vxlan, wireguard]
    default: udp
  name:
    description:
      - For C(vxlan) and C(wireguard), the name of the device (default C(vxlan0), C(wg0)).
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
      - The nodes of the overlay, this one included, the same list on every node. The entry whose
        O(peers[].address) equals O(local) is this node and is skipped (its subnet must equal O(subnet)).
      - A list without this node's entry fails before anything changes (it most likely means that O(local)
        is wrong); an empty list builds the devices with no peers.
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
      public_key:
        description:
          - The peer's WireGuard public key (base64, as RV(public_key) returns it). Required for every peer
            but this node when O(backend=wireguard); only for that backend.
        type: str
  port:
    description:
      - UDP port of the tunnels on every node.
      - Default C(9000) for C(udp) (the talk's), C(4789) for C(vxlan) (the IANA VXLAN port, which NIC offloads
        recognise; flannel uses the Linux legacy port 8472, give O(port=8472) to talk to flannel nodes),
        C(51820) for C(wireguard) (its listen port, and the port of every peer's endpoint).
    type: int
  vni:
    description: The VXLAN network identifier (0-16777215). Only for C(vxlan); default C(1).
    type: int
  mtu:
    description:
      - MTU of the overlay devices. Default the smallest MTU of the underlay devices towards the peers
        (or of O(underlay_dev)) minus the overhead, 28 for C(udp), 50 for C(vxlan), 60 for C(wireguard).
      - A larger value makes the underlay fragment full-size packets.
    type: int
  underlay_dev:
    description:
      - The device that carries the underlay. Default the devices the kernel routes the peers' addresses
        through.
      - For C(vxlan) it also binds the VXLAN device to it (C(dev) of C(ip link add type vxlan)).
    type: str
  key_file:
    description:
      - For C(wireguard), the file that holds this node's private key. A missing file is made with a new key;
        an existing one is used as it is (a file that does not hold a key fails the run; it is never replaced)
        and its mode is set to C(0600).
      - Default C(/etc/cnfs-netlab/wireguard/<name>.key) or C(/etc/cnfs-netlab/wireguard/<netns>/<name>.key)
        with O(netns). It survives reboots, so a node keeps its public key and its peers need no change.
      - Nodes that share one file system need a file each (the built-in lab's nodes share C(/etc) but each has
        its own C(/run), so the C(overlay) role gives them C(/run/cnfs-netlab/wireguard/<name>.key), lost at reboot,
        which makes a new key). A peer whose public key is this node's own fails the run with a message that
        says so.
    type: path
  remove_key:
    description:
      - For C(wireguard) with O(state=absent), also delete O(key_file). By default the key stays, so that
        building the overlay again keeps the node's public key.
    type: bool
    default: false
  state:
    description:
      - C(present) builds this node's end of the overlay; C(absent) removes every device of the overlay
        called O(name) (with its routes, FDB and neighbour entries, WireGuard peers), stops its processes and
        restores the sysctls it changed.
      - C(key), for C(wireguard) only, makes sure O(key_file) holds a private key (makes one when missing) and
        returns its public key; no device is touched and O(local), O(subnet) and O(peers) are not needed.
    type: str
    choices: [present, absent, key]
    default: present
notes:
  - Needs root. The C(udp) backend needs C(/dev/net/tun) on the node, nothing else (no socat).
  - IPv4 only (underlay and container subnets).
  - The C(udp) and C(vxlan) tunnels are neither authenticated nor encrypted, like the talk's; anyone who can send
    UDP to O(port) of a node can inject packets into its container network. Use them in a lab, or use
    C(wireguard).
  - For C(wireguard) the peers must reach each other without address translation, because a WireGuard device takes the
    source of a peer's latest packet as that peer's endpoint, and a different one would show as a change on
    every run.
  - In check mode with O(backend=wireguard) and no key yet, the key's and the device's public key show as
    C((new key, made on the node)) and RV(public_key) is null.
  - The overlay does not enable IP forwarding on the node; the node must forward between its container
    bridge and the overlay devices (C(net.ipv4.ip_forward=1), see M(cnfs.netlab.sysctl)).
  - Containers keep their own MTU; give their interfaces the overlay MTU (returned as RV(overlay)) to avoid
    path-MTU discovery on the first large packets.
requirements:
  - pyroute2 >= 0.9
  - a kernel with WireGuard (backend wireguard)
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

# WireGuard: first every node makes sure it has a key and tells its public key, then the overlay is built
# with every peer's public key (the collection's overlay role does exactly this).
- name: Make this node's WireGuard key (once) and read its public key
  cnfs.netlab.overlay:
    backend: wireguard
    state: key
  register: wg_key

- name: Build the encrypted overlay with every peer's public key (each node registered wg_key above)
  cnfs.netlab.overlay:
    backend: wireguard
    local: "{{ underlay_address }}"
    subnet: "{{ container_subnet }}"
    peers:
      - name: node1
        address: 192.0.2.11
        subnet: 172.16.1.0/24
        public_key: "{{ hostvars['node1'].wg_key.public_key }}"
      - name: node2
        address: 192.0.2.12
        subnet: 172.16.2.0/24
        public_key: "{{ hostvars['node2'].wg_key.public_key }}"

- name: Remove the WireGuard overlay and its key
  cnfs.netlab.overlay:
    backend: wireguard
    state: absent
    remove_key: true
"""

RETURN = r"""
overlay:
  description:
    - This node's end of the overlay after the run; empty when absent.
    - For C(udp), C(tunnels) maps each device to its peer, the UDP endpoints, MTU, addresses, routes,
      IPv6 and reverse-path settings and whether its process runs (C(socat) for a process of an earlier
      release, which the next apply replaces).
    - For C(vxlan), the device's settings, C(fdb) (peer VTEP MAC -> underlay address), C(neighbours)
      (peer VTEP address -> MAC) and C(routes) (peer subnet -> peer VTEP address).
    - For C(wireguard), C(key) (C(file), C(mode), C(public_key)) and C(device) (C(public_key), C(port),
      C(mtu), C(up), C(addresses), C(peers) by name with C(public_key), C(endpoint) and C(allowed_ips), and
      C(routes)); no private key.
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
  description: For C(udp), the pid of the tunnel process of each tunnel device (as recorded in its pid file).
  returned: when backend is udp and the overlay is present
  type: dict
  sample: {tun-node2: 4242, tun-node3: 4243}
public_key:
  description:
    - For C(wireguard), this node's public key (base64), from O(key_file) after the run; what every peer
      needs as its O(peers[].public_key) for this node.
    - Null when there is no key (check mode before the key is made, or O(remove_key=true)).
  returned: when backend is wireguard
  type: str
  sample: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
changes:
  description:
    - The routes and sysctls that the run changed for the overlay, each with its key and its state before and
      after, as the C(route) and C(sysctl) modules report them (the overlay's own diff shows them in its terms).
  returned: when the run changed any
  type: list
  elements: dict
  sample: [{resource: "route 172.16.2.0/24 in netns node1", before: null, after: {dest: 172.16.2.0/24}}]
key_file:
  description: For C(wireguard), the file that holds the private key (the private key itself is never returned).
  returned: when backend is wireguard
  type: str
  sample: /etc/cnfs-netlab/wireguard/wg0.key
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._args import OVERLAY_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_backends import select_backend
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_module


def main() -> None:
    module = AnsibleModule(**OVERLAY_SPEC, supports_check_mode=True)
    try:
        resource = select_backend(dict(module.params))
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    run_module(module, [resource])


if __name__ == "__main__":
    main()
