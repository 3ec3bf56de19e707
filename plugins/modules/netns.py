#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: netns
short_description: Manage named network namespaces
version_added: 0.1.0
description:
  - Creates or removes a named network namespace under C(/run/netns), the way C(ip netns add) and
    C(ip netns delete) do, through netlink and mount calls (no C(ip) command is run).
  - A namespace that is present always has its loopback interface up; a namespace found with loopback
    down is repaired.
  - Removing a namespace first deletes its interfaces, so that the peers of its veth pairs in other
    namespaces are gone when the module returns (the kernel otherwise frees them asynchronously).
    Those peers go with their addresses and bridge memberships; the diff lists them, in the state
    before, under C(removes_peers) (each with C(name), C(netns), C(bridge) and C(addresses); C(netns)
    null is the module's own namespace).
  - The name is matched exactly; C(con1) never matches C(con10).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
options:
  name:
    description:
      - Name of the namespace under C(/run/netns).
      - 1-255 characters without C(/), spaces or NUL.
    type: str
    required: true
  state:
    description:
      - C(present) creates the namespace (and brings loopback up); C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root (C(CAP_SYS_ADMIN)).
  - Processes still running inside a removed namespace keep it alive, unnamed, until they exit.
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.veth
  - module: cnfs.netlab.netlink_info
"""

EXAMPLES = r"""
- name: Create the container namespace of the talk's first stage
  cnfs.netlab.netns:
    name: con

- name: Remove it again
  cnfs.netlab.netns:
    name: con
    state: absent
"""

RETURN = r"""
netns:
  description: The namespace after the run; empty when absent.
  returned: always
  type: dict
  sample: {name: con, loopback: up}
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import NETNS_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._netns import NetnsResource
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(NETNS_SPEC, NetnsResource)


if __name__ == "__main__":
    main()
