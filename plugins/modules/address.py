#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: address
short_description: Manage the IP addresses of a network interface
version_added: 0.1.0
description:
  - Adds or removes IPv4 and IPv6 addresses of one interface, through netlink (no C(ip) command is run),
    like C(ip addr add) and C(ip addr del).
  - Addresses are compared normalised and regardless of order; C(fd00:0::1/64) is C(fd00::1/64). IPv4 octets
    with leading zeros (C(10.0.0.010/24)) are refused, since tools disagree on whether they are octal.
  - An IP address is held at most once per interface. Its identity is the IP; the prefix length is one of its
    attributes, so listing C(10.0.0.1/24) where C(10.0.0.1/16) is configured replaces the C(/16).
  - Before any change, every listed address is checked against the other interfaces of the namespace (as they
    are now, or as earlier resources of the same run leave them); an address already on another interface is
    refused, naming both interfaces. IPv6 link-local addresses are scoped to their link and exempt.
  - Removing an IPv4 primary address makes the kernel drop its secondaries (unless
    C(net.ipv4.conf.<dev>.promote_secondaries) is set); the module adds back any of those that are wanted.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  dev:
    description:
      - Name of the interface (at most 15 bytes) in O(netns).
      - With O(state=present) it must exist, or be created by an earlier resource of the same run.
      - With O(state=absent) a missing interface means there is nothing to remove.
    type: str
    required: true
  addresses:
    description:
      - Addresses with prefix length, IPv4 or IPv6, like C(10.0.0.10/24) or C(fd00::10/64).
      - The same IP twice with different prefix lengths is refused.
    type: list
    elements: str
    default: []
  purge:
    description:
      - With O(state=present), remove every address of O(dev) that is not listed.
      - With O(state=absent), remove every address of O(dev).
      - IPv6 link-local addresses (C(fe80::/10), which the kernel adds to each interface) are never removed by
        purge unless they are listed (with O(state=absent)) or replaced by a listed one (with O(state=present)).
      - Purging the loopback interface also removes C(127.0.0.1/8) and C(::1/128) unless they are listed.
    type: bool
    default: false
  state:
    description:
      - V(present) makes sure the listed addresses are on O(dev) (and, with O(purge), only those).
      - V(absent) removes the listed addresses, matched by IP (any prefix length).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root (C(CAP_NET_ADMIN)).
  - A new IPv6 address is C(tentative) until duplicate address detection has finished (about a second on an
    interface that is up); it is present in the kernel, but cannot be used as a source address until then.
  - Addresses added by the kernel or by other tools (SLAAC, DHCP) are removed by O(purge) like any other.
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.route
  - module: cnfs.netlab.netlink_info
"""

EXAMPLES = r"""
- name: Give the container end of the veth pair its address
  cnfs.netlab.address:
    netns: con
    dev: veth1
    addresses:
      - 172.16.0.2/24
      - fd00:16::2/64

- name: Make these the only addresses of the bridge (link-local ones stay)
  cnfs.netlab.address:
    netns: node1
    dev: br0
    addresses: [172.16.0.1/24]
    purge: true

- name: Remove one address
  cnfs.netlab.address:
    netns: con
    dev: veth1
    addresses: [fd00:16::2/64]
    state: absent
"""

RETURN = r"""
address:
  description:
    - The addresses of the interface after the run (sorted), in the shape the module takes;
      empty when the interface does not exist.
    - They include the IPv6 link-local address the kernel gives an interface that is up (C(fe80::/10)).
  returned: always
  type: dict
  sample: {netns: con, dev: veth1, addresses: [172.16.0.2/24, "fd00:16::2/64"]}
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._address import AddressResource
from ansible_collections.cnfs.netlab.plugins.module_utils._args import ADDRESS_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(ADDRESS_SPEC, AddressResource)


if __name__ == "__main__":
    main()
