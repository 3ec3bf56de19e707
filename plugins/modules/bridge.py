#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge
short_description: Manage Linux bridges and their ports
version_added: 0.1.0
description:
  - Creates, changes or removes a Linux bridge in a network namespace, with its MTU, spanning tree (STP),
    up state and ports. This is the switch of the talk's second stage, joining several containers on one
    machine. No C(ip) or C(brctl) command is run.
  - An existing interface called O(name) that is not a bridge is an error; it is never deleted or replaced.
  - Removing a bridge releases its ports (they are not deleted).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  name:
    description:
      - Interface name of the bridge.
      - At most 15 bytes, without C(/), C(:) or whitespace, and not C(.) or C(..).
    type: str
    required: true
  mtu:
    description:
      - MTU of the bridge, 68..65535.
      - Left out, the MTU stays as it is; the kernel then makes a bridge follow the smallest MTU of its ports
        (1500 without ports). Once set, the bridge keeps it whatever its ports.
    type: int
  stp:
    description:
      - Whether the kernel's spanning tree protocol runs on the bridge. Left out, it stays as it is
        (a new bridge has it off).
    type: bool
  up:
    description:
      - Whether the bridge is administratively up.
    type: bool
    default: true
  ports:
    description:
      - Interfaces in the same namespace that must be ports of the bridge. They must exist, or be created by
        an earlier task of the same M(cnfs.netlab.node) run. A port of another bridge is moved to this one.
      - Left out, the ports stay as they are.
    type: list
    elements: str
  ports_exclusive:
    description:
      - With V(true), ports of the bridge that are not listed in O(ports) are released (not deleted);
        O(ports=[]) then releases every port.
      - With V(false), the listed ports are added and other ports are left alone.
      - Has no effect when O(ports) is left out.
    type: bool
    default: false
  state:
    description:
      - V(present) creates the bridge and sets its attributes; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root (C(CAP_NET_ADMIN)).
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.veth
  - module: cnfs.netlab.link
"""

EXAMPLES = r"""
- name: Create the bridge of the talk's second stage
  cnfs.netlab.bridge:
    name: br0

- name: Make exactly these two veth ends its ports, with STP off
  cnfs.netlab.bridge:
    name: br0
    stp: false
    ports: [veth0, veth1]
    ports_exclusive: true

- name: Create an underlay switch inside a namespace
  cnfs.netlab.bridge:
    name: sw0
    netns: underlay
    mtu: 1500

- name: Remove the bridge (its ports are released)
  cnfs.netlab.bridge:
    name: br0
    state: absent
"""

RETURN = r"""
bridge:
  description: The bridge after the run, in the shape of the module's options; empty when absent.
  returned: always
  type: dict
  sample:
    name: br0
    netns: null
    mtu: 1500
    stp: false
    up: true
    ports: [veth0, veth1]
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import BRIDGE_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._link import BridgeResource
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(BRIDGE_SPEC, BridgeResource)


if __name__ == "__main__":
    main()
