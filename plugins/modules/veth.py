#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: veth
short_description: Manage veth pairs, with each end in its own network namespace
version_added: 0.1.0
description:
  - Creates, changes or removes a virtual Ethernet (veth) pair, the cable of the talk "Container Networking
    From Scratch" between a container's namespace and the host or a bridge.
  - End A (O(name)) lives in O(netns), end B (O(peer)) in O(peer_netns). Both ends are created directly in
    their namespaces by one netlink request, so there is never a moment where an end sits in the wrong
    namespace. No C(ip) command is run.
  - An existing O(name) that is not a veth, or whose peer is not O(peer) in O(peer_netns), is an error;
    the module never deletes or recreates a pair it was not asked to. Delete it first with O(state=absent).
  - Removing the pair deletes end A; the kernel deletes end B in the same operation.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  netns:
    description:
      - The network namespace of end A (O(name)), a name under C(/run/netns) or an absolute path to a
        namespace file (for example C(/proc/1234/ns/net)).
      - Omit it for the namespace the module runs in (the managed node's own).
      - The namespace must exist; the module never creates it (use M(cnfs.netlab.netns) for that).
    type: str
  name:
    description:
      - Interface name of end A, in O(netns).
      - At most 15 bytes, without C(/), C(:) or whitespace, and not C(.) or C(..).
    type: str
    required: true
  peer:
    description:
      - Interface name of end B, in O(peer_netns). Same rules as O(name).
      - Required with O(state=present). With O(state=absent) it is optional; when given, the pair is only
        deleted if end A's peer really is O(peer) in O(peer_netns).
    type: str
  peer_netns:
    description:
      - The network namespace of end B, a name under C(/run/netns) or an absolute path to a namespace file.
      - Defaults to O(netns), so both ends are in the same namespace unless told otherwise. To put end B in
        the module's own namespace while end A is in another, swap the ends (O(name) in the module's own
        namespace, O(peer) with O(peer_netns)).
      - The namespace must exist.
    type: str
  mac:
    description:
      - The MAC address of end O(name), set at creation and corrected later.
      - Left out, the kernel's random address stays.
    type: str
    version_added: 0.2.0
  peer_mac:
    description:
      - The MAC address of end O(peer). A fixed address (for example derived from the container's IP address, like
        C(0a:58:ac:10:00:02)) keeps the neighbours' entries valid when the pair is recreated.
      - Left out, the kernel's random address stays.
    type: str
    version_added: 0.2.0
  mtu:
    description:
      - MTU of both ends, 68..65535.
      - Left out, the MTU stays as it is (a new pair gets 1500).
    type: int
  up:
    description:
      - Whether both ends are administratively up.
    type: bool
    default: true
  bridge:
    description:
      - A bridge in O(netns) that end A joins as a port.
      - An empty string releases end A from its bridge. Left out, end A's bridge stays as it is.
      - The bridge must exist, or be created by an earlier task of the same M(cnfs.netlab.node) run.
    type: str
  state:
    description:
      - V(present) creates the pair and sets its attributes; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root (C(CAP_NET_ADMIN) in both namespaces).
  - The returned O(mtu) and O(up) are those of both ends; they are V(null) when the two ends differ
    (changed behind the module's back), and the next run sets both ends again.
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.netns
  - module: cnfs.netlab.bridge
  - module: cnfs.netlab.link
"""

EXAMPLES = r"""
- name: Wire the container namespace to the host (stage 1 of the talk)
  cnfs.netlab.veth:
    name: veth0
    peer: ceth0
    peer_netns: con

- name: Connect two namespaces directly, both ends created in place
  cnfs.netlab.veth:
    name: veth-a
    netns: con1
    peer: veth-b
    peer_netns: con2
    mtu: 1450

- name: Plug a container into the node's bridge (stage 2)
  cnfs.netlab.veth:
    name: veth1
    bridge: br0
    peer: ceth1
    peer_netns: con1

- name: Remove the pair (its peer goes with it)
  cnfs.netlab.veth:
    name: veth0
    state: absent
"""

RETURN = r"""
veth:
  description: The pair after the run, in the shape of the module's options; empty when absent.
  returned: always
  type: dict
  sample:
    name: veth0
    netns: null
    peer: ceth0
    peer_netns: con
    mtu: 1500
    up: true
    bridge: ""
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import VETH_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._link import VethResource
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(VETH_SPEC, VethResource)


if __name__ == "__main__":
    main()
