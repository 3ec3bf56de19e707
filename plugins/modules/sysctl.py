#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl
short_description: Set a kernel parameter in a network namespace and restore its original value
version_added: 0.1.0
description:
  - Sets one sysctl key (C(net.ipv4.ip_forward), C(net.ipv4.conf.eth0.rp_filter), ...) by writing its file under
    C(/proc/sys), from inside the network namespace O(netns) (the files under C(/proc/sys/net) belong to the
    namespace of whoever opens them). No C(sysctl) or C(ip netns exec) command is run.
  - Values are compared the way C(sysctl) prints them, whitespace collapsed to single spaces.
  - Before it first changes a key, the module records the key's value in a journal on the node, once, and keeps
    that FIRST original value across later changes. O(state=restored) writes it back and forgets it, so that a
    lab's teardown leaves the node as it found it.
  - Only C(net.*) keys belong to a network namespace. Every other key (C(kernel.*), C(vm.*), ...) is global to the
    machine and is refused together with O(netns); without O(netns) such a key is set for the whole machine.
  - Before any change, the key must exist in the namespace and be writable; a value the kernel refuses fails with
    the kernel's reason and leaves the key and the journal unchanged.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  name:
    description:
      - The key, with C(.) between components, like C(net.ipv4.conf.eth0.forwarding).
      - An interface name that contains dots is written with C(/) in their place, as with C(sysctl), like
        C(net.ipv4.conf.eth0/100.rp_filter) for the interface C(eth0.100); a name whose first separator is C(/)
        uses C(/) throughout (C(net/ipv4/conf/eth0.100/rp_filter)).
      - A per-interface key (C(net.ipv4.conf.<dev>.*), C(net.ipv6.neigh.<dev>.*)) needs the interface, or an
        earlier resource of the same run that creates it.
    type: str
    required: true
  value:
    description:
      - The value to set, with O(state=present).
      - Give it the way the kernel prints it (C(1), not C(01)). A value that the kernel stores differently fails
        (later runs could never report "no change"), and the value the key had before is written back, so the
        kernel is left as it was; the message says what was put back.
      - Numbers are written as they are, booleans as C(1) / C(0), lists joined by spaces
        (C([32768, 60999]) for C(net.ipv4.ip_local_port_range)).
    type: raw
  state:
    description:
      - V(present) sets O(value) (journaling the original value first).
      - V(restored) writes back the journaled original value and drops the journal entry; without an entry
        nothing changes. If O(netns) no longer exists, only the entry is dropped.
    type: str
    choices: [present, restored]
    default: present
  journal:
    description:
      - The journal file on the node, JSON, keyed by namespace and key.
      - The default lives under C(/run), which is private to each node in the built-in lab and emptied on reboot,
        like the sysctl values themselves.
    type: path
    default: /run/cnfs-netlab/sysctl-journal.json
notes:
  - Needs root.
  - In check mode the journal is not written.
requirements:
  - pyroute2 >= 0.9 (only for entering namespaces through the shared session)
seealso:
  - module: cnfs.netlab.route
"""

EXAMPLES = r"""
- name: Let the node route between its containers and the other node (stage 3 of the talk)
  cnfs.netlab.sysctl:
    netns: node1
    name: net.ipv4.ip_forward
    value: 1

- name: Loose reverse-path filtering on a VLAN interface
  cnfs.netlab.sysctl:
    netns: node1
    name: net.ipv4.conf.eth0/100.rp_filter
    value: 2

- name: Put it back as it was before the lab
  cnfs.netlab.sysctl:
    netns: node1
    name: net.ipv4.ip_forward
    state: restored
"""

RETURN = r"""
sysctl:
  description:
    - The key after the run, C(original) being the journaled value (V(null) when there is no entry).
  returned: always
  type: dict
  sample: {netns: node1, name: net.ipv4.ip_forward, value: "1", original: "0"}
previous:
  description: The value before this run; V(null) when the key or its namespace did not exist.
  returned: always
  type: str
  sample: "0"
original:
  description:
    - The journaled original value - with O(state=present) the entry after the run (V(null) if the module never
      had to change the key); with O(state=restored) the value that was restored (V(null) if there was no entry).
  returned: always
  type: str
  sample: "0"
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import SYSCTL_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import SysctlResource


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(SYSCTL_SPEC, SysctlResource)


if __name__ == "__main__":
    main()
