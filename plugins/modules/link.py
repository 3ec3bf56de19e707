#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: link
short_description: Change the settings of an existing network interface
version_added: 0.1.0
description:
  - Sets the up state, MTU and master (bridge) of an interface that already exists in a network
    namespace (one end of a veth pair, a bridge, a VXLAN device, loopback, a physical NIC).
  - It never creates or deletes an interface; a missing interface is an error that names it and its
    namespace. Use M(cnfs.netlab.veth) or M(cnfs.netlab.bridge) to create one.
  - Options left out keep their current values. No C(ip) command is run.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  name:
    description:
      - Name of the interface.
      - At most 15 bytes, without C(/), C(:) or whitespace, and not C(.) or C(..).
    type: str
    required: true
  up:
    description:
      - Whether the interface is administratively up. Left out, it stays as it is.
    type: bool
  mtu:
    description:
      - MTU of the interface. It is checked against the range the kernel reports for the device before
        anything changes (68..65535 for veth and bridge devices).
      - Left out, it stays as it is.
    type: int
  master:
    description:
      - The bridge (or other master device) in the same namespace that the interface is a port of.
      - An empty string releases the interface from its master. Left out, it stays as it is.
      - The master must exist, or be created by an earlier task of the same M(cnfs.netlab.node) run, and be
        of a kind that can have ports (a bridge, bond, team or vrf); any other kind (a veth, say) fails before
        anything changes, in check mode too.
    type: str
  kind:
    description:
      - The kind of link the interface must be, as M(cnfs.netlab.netlink_info) reports it (C(veth), C(bridge),
        C(loopback), C(device), ...). Left out, any kind. An interface of another kind fails before anything
        changes.
    type: str
  index:
    description:
      - Read-only facts of a M(cnfs.netlab.netlink_info) C(links) item, accepted so that such an item can be
        given back to this module (or to the C(links) of M(cnfs.netlab.node)) as it is. They are ignored;
        the module sets only O(up), O(mtu) and O(master). The other ones are O(operstate), O(mac), O(peer),
        O(peer_netns), O(stp), O(ports) and O(vxlan).
    type: raw
  operstate:
    description: Ignored, see O(index).
    type: raw
  mac:
    description: Ignored, see O(index).
    type: raw
  peer:
    description: Ignored, see O(index).
    type: raw
  peer_netns:
    description: Ignored, see O(index).
    type: raw
  stp:
    description: Ignored, see O(index).
    type: raw
  ports:
    description: Ignored, see O(index).
    type: raw
  vxlan:
    description: Ignored, see O(index).
    type: raw
notes:
  - Needs root (C(CAP_NET_ADMIN)).
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.veth
  - module: cnfs.netlab.bridge
"""

EXAMPLES = r"""
- name: Bring up loopback and the container end of the pair
  cnfs.netlab.link:
    name: "{{ item }}"
    netns: con
    up: true
  loop: [lo, ceth0]

- name: Lower the MTU of a veth end for an overlay
  cnfs.netlab.link:
    name: ceth0
    netns: con
    mtu: 1450

- name: Plug an existing interface into a bridge
  cnfs.netlab.link:
    name: vxlan0
    master: br0

- name: Release it again
  cnfs.netlab.link:
    name: vxlan0
    master: ""
"""

RETURN = r"""
link:
  description: The interface's managed settings after the run, in the shape of the module's options.
  returned: always
  type: dict
  sample:
    name: ceth0
    netns: con
    up: true
    mtu: 1450
    master: ""
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import LINK_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._link import LinkResource
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(LINK_SPEC, LinkResource)


if __name__ == "__main__":
    main()
