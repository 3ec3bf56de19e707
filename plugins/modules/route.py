#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: route
short_description: Manage one IPv4 or IPv6 route
version_added: 0.1.0
description:
  - Adds, changes or removes one route through netlink (no C(ip) command is run), like C(ip route add),
    C(ip route replace) and C(ip route del).
  - A route is identified, as the kernel does, by O(family), O(table), O(dest) and O(metric). O(state) matches
    exactly that key; every other attribute is compared and, if it differs, changed in place (C(NLM_F_REPLACE)),
    without a moment where the route is missing.
  - Compared attributes - O(type), O(gateway) (leaving it out means no gateway), O(onlink) and O(scope) always;
    O(dev) and O(proto) only when given (otherwise the kernel's choice of interface for the gateway, and the
    route's current protocol, stand).
  - A gateway must be on a link of the namespace (in the subnet of an address, or of a route without gateway),
    now or after the earlier resources of the same run; otherwise the module fails before any change with
    C(gateway X is not reachable from dev Y ...). O(onlink) skips that check.
  - Multipath routes are not managed; one found at the key is shown, and replaced, as its first hop.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  dest:
    description:
      - The destination, V(default) or a network in CIDR form (C(10.1.0.0/16), C(fd00:1::/64)).
      - An address without prefix length is a host route (C(/32) or C(/128)).
      - Host bits must be zero (C(10.1.0.0/16), not C(10.1.2.3/16)); C(0.0.0.0/0) and C(::/0) are V(default).
    type: str
    required: true
  family:
    description:
      - V(inet) (IPv4) or V(inet6) (IPv6).
      - Inferred from O(dest), else from O(gateway); needed only for an IPv6 V(default) route without gateway.
        When nothing tells the family, it is V(inet), as with C(ip route).
    type: str
    choices: [inet, inet6]
  gateway:
    description:
      - The next hop (C(via)), an address of the same family as O(dest).
      - Leaving it out means the route has no gateway (its destination is on the link of O(dev)).
      - An IPv6 link-local gateway (C(fe80::...)) needs O(dev).
    type: str
  dev:
    description:
      - The outgoing interface (at most 15 bytes). It must exist, or be created by an earlier resource of the run.
      - Compared only when given; with only a gateway, the kernel picks the interface.
    type: str
  type:
    description:
      - The route type. V(blackhole), V(unreachable), V(prohibit) and V(throw) routes have no O(gateway),
        O(dev) or O(onlink). V(local), V(broadcast), V(anycast) and V(multicast) routes need O(dev).
    type: str
    choices: [unicast, local, broadcast, anycast, multicast, blackhole, unreachable, prohibit, throw]
    default: unicast
  scope:
    description:
      - The scope, by name (V(universe), V(site), V(link), V(host), V(nowhere)) or number 0-255. V(global), the
        name C(ip address) prints for scope 0, is taken for V(universe); the module and
        M(cnfs.netlab.netlink_info) report V(universe).
      - Default, as C(ip route) - V(host) for V(local) routes, V(link) for unicast routes without gateway and for
        broadcast, anycast and multicast routes, V(universe) otherwise.
      - IPv4 only; the kernel reports every IPv6 route as V(universe), and other values are refused for IPv6.
    type: str
  metric:
    description:
      - The route's priority (lower wins), part of its identity.
      - Default, as the kernel - C(0) for IPv4, C(1024) for IPv6 (where C(0) also means C(1024)).
    type: int
  table:
    description:
      - The routing table, V(main), V(local), V(default) or a number from 1 to 4294967295.
    type: str
    default: main
  onlink:
    description:
      - Pretend the gateway is on the link of O(dev) even if no address or route says so (C(ip route ... onlink)).
      - Needs O(gateway) and O(dev).
    type: bool
    default: false
  proto:
    description:
      - The routing protocol that owns the route, by name (V(static), V(boot), V(kernel), ... as in
        C(/etc/iproute2/rt_protos)) or number 0-255.
      - Compared only when given. New routes get V(static) when it is left out.
    type: str
  state:
    description:
      - V(present) makes the route at the key exist with these attributes; V(absent) removes the route at the key
        (whatever its other attributes).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root (C(CAP_NET_ADMIN)).
  - Routes whose gateway becomes unreachable (its address removed, its interface down) are removed by the kernel.
  - Check mode predicts an unreachable gateway from addresses and routes; a gateway in the subnet of an interface
    that is down passes check mode, and the real run fails with the same message when the kernel refuses it.
  - Attributes this module does not model (C(src), C(mtu), ...) are dropped when it replaces a route.
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.address
  - module: cnfs.netlab.sysctl
"""

EXAMPLES = r"""
- name: Route the other node's container subnet through the other node (stage 3 of the talk)
  cnfs.netlab.route:
    netns: node1
    dest: 172.16.1.0/24
    gateway: 10.0.0.20

- name: Default route of a container through its bridge
  cnfs.netlab.route:
    netns: con1
    dest: default
    gateway: 172.16.0.1

- name: IPv6 default route through a link-local router
  cnfs.netlab.route:
    netns: con1
    dest: default
    family: inet6
    gateway: fe80::1
    dev: veth1

- name: A gateway that is not in any subnet of the interface
  cnfs.netlab.route:
    netns: node1
    dest: 172.16.9.0/24
    gateway: 192.168.99.1
    dev: eth0
    onlink: true

- name: Drop traffic to a prefix, in a table of its own, with a metric
  cnfs.netlab.route:
    netns: node1
    dest: 10.99.0.0/16
    type: blackhole
    table: 100
    metric: 50

- name: Remove the default route
  cnfs.netlab.route:
    netns: con1
    dest: default
    state: absent
"""

RETURN = r"""
route:
  description:
    - The route after the run, in the shape the module takes; empty when absent.
    - C(dev) is V(null) after creating a route through a gateway without O(dev) (the kernel has not chosen yet).
  returned: always
  type: dict
  sample:
    netns: node1
    dest: 172.16.1.0/24
    family: inet
    table: main
    metric: 0
    type: unicast
    gateway: 10.0.0.20
    dev: eth0
    scope: universe
    onlink: false
    proto: static
"""

from ansible_collections.cnfs.netlab.plugins.module_utils._args import ROUTE_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import run_resource_module
from ansible_collections.cnfs.netlab.plugins.module_utils._route import RouteResource


def main() -> None:
    # The argument spec is shared with the node module's items (module_utils/_args.py).
    run_resource_module(ROUTE_SPEC, RouteResource)


if __name__ == "__main__":
    main()
