#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: netlink_info
short_description: Report links, addresses, routes and sysctls of network namespaces
version_added: 0.1.0
description:
  - Reads, through netlink, the links, addresses and routes (and optionally sysctls) of network namespaces and
    returns them in the shapes the collection's modules take, so what it reports can be fed back.
  - Never creates or changes anything. A namespace that does not exist is listed under RV(missing), not created.
  - Returns two views of the same facts, RV(namespaces) (per namespace) and RV(node) (the options of
    M(cnfs.netlab.node) that recreate the reported namespaces).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
attributes:
  check_mode:
    support: full
    description: Can run in check mode.
    details: This module never changes anything; it reads in check mode just as it does otherwise.
  diff_mode:
    support: none
    description: Returns no diff.
    details: This module never changes anything.
  idempotent:
    support: full
    description: Reading changes nothing.
options:
  netns:
    description:
      - The namespaces to report, as names under C(/run/netns), absolute paths to namespace files, or the empty
        string C('') for the namespace the module runs in (the managed node's own).
      - Omit it to report the module's own namespace and every namespace under C(/run/netns).
      - A single name is accepted as a list of one, so C(module_defaults) of the C(cnfs.netlab.netlab) group
        setting C(netns) report that namespace.
    type: list
    elements: str
  include:
    description:
      - What to read for each namespace.
    type: list
    elements: str
    choices: [links, addresses, routes, sysctls]
    default: [links, addresses, routes]
  route_tables:
    description:
      - Routing tables to report, by number or as C(main), C(local), C(default); C(all) reports every table.
    type: list
    elements: raw
    default: [main]
  kernel:
    description:
      - Also report what the kernel makes by itself; left out by default because re-applying it is meaningless.
      - Addresses of C(lo) (C(127.0.0.1/8), C(::1/128)), IPv6 link-local and autoconfigured addresses.
      - Routes with protocol C(kernel), C(ra) or C(redirect), and routes of type C(local), C(broadcast),
        C(multicast), C(anycast).
    type: bool
    default: false
  sysctls:
    description:
      - The sysctls read when O(include) contains C(sysctls); only per-namespace ones (under C(net.)).
      - Give a name with C(/) separators when an interface name contains a dot (C(net/ipv4/conf/eth0.1/rp_filter)).
    type: list
    elements: str
    default: [net.ipv4.ip_forward, net.ipv6.conf.all.forwarding]
notes:
  - Needs root to enter other namespaces.
  - The peer of a veth in another namespace is found through the kernel's namespace ids (C(IFLA_LINK_NETNSID));
    a peer in a namespace that has no name under C(/run/netns) and is not the module's own is reported with
    C(peer=null).
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.node
  - module: cnfs.netlab.reachability
"""

EXAMPLES = r"""
- name: Gather every namespace of the node
  cnfs.netlab.netlink_info:
  register: gathered

- name: Show the routes of container con1
  ansible.builtin.debug:
    var: gathered.namespaces.con1.routes

- name: Gather two namespaces, with sysctls and every routing table
  cnfs.netlab.netlink_info:
    netns: [con1, con2]
    include: [links, addresses, routes, sysctls]
    route_tables: [all]
  register: gathered

- name: Rebuild what was gathered (for example after the namespaces were deleted)
  cnfs.netlab.node:
    namespaces: "{{ gathered.node.namespaces }}"
    bridges: "{{ gathered.node.bridges }}"
    veths: "{{ gathered.node.veths }}"
    links: "{{ gathered.node.links }}"
    addresses: "{{ gathered.node.addresses }}"
    routes: "{{ gathered.node.routes }}"
"""

RETURN = r"""
namespaces:
  description:
    - The facts per namespace, keyed by the name given (C('') is the module's own namespace).
    - Every item carries C(netns) (null for the module's own namespace), so it has the shape of the module's options.
  returned: always
  type: dict
  contains:
    links:
      description:
        - Every link, ordered by index. C(kind) is the kernel's link kind (C(veth), C(bridge), C(vxlan), C(tun), ...),
          C(loopback) for C(lo), C(device) for a link without a kind (a physical interface).
        - Veths have C(peer) and C(peer_netns) (null when the peer is in the module's own namespace, or unknown).
        - Bridges have C(stp) and C(ports) (names); vxlan links have C(vxlan) (C(id), C(port), C(local), C(group),
          C(dev), C(learning)).
        - Each item can be given back to M(cnfs.netlab.link) (or the C(links) of M(cnfs.netlab.node)) as it is;
          that module sets C(up), C(mtu) and C(master), checks C(kind) and ignores the other facts.
      returned: when O(include) contains C(links)
      type: list
      elements: dict
      sample:
        - {name: eth0, netns: con1, index: 2, kind: veth, mtu: 1500, up: true, operstate: up,
           mac: "8a:3c:11:02:9e:41", master: "", peer: veth-con1, peer_netns: null}
    addresses:
      description: Per device, in the shape of M(cnfs.netlab.address) (C(dev), C(netns), C(addresses)).
      returned: when O(include) contains C(addresses)
      type: list
      elements: dict
      sample: [{dev: eth0, netns: con1, addresses: [10.0.0.10/24]}]
    routes:
      description:
        - In the shape of M(cnfs.netlab.route) (C(dest), C(gateway), C(dev), C(scope), C(type), C(metric),
          C(table), C(onlink), C(family), C(proto), C(netns)).
        - C(dest) is C(default) or a network in CIDR form; C(table), C(proto), C(scope), C(type) use the names
          C(ip route) prints where there is one. Multipath routes also have C(nexthops).
      returned: when O(include) contains C(routes)
      type: list
      elements: dict
      sample:
        - {dest: default, gateway: 10.0.0.1, dev: eth0, scope: universe, type: unicast, metric: 0, table: main,
           onlink: false, family: inet, proto: boot, netns: con1}
    sysctls:
      description: Value of each requested sysctl (whitespace collapsed), null when it does not exist.
      returned: when O(include) contains C(sysctls)
      type: dict
      sample: {net.ipv4.ip_forward: "1"}
node:
  description:
    - The options of M(cnfs.netlab.node) that recreate the reported namespaces, namely C(namespaces) (the named ones),
      C(bridges), C(veths) (each pair once; the end in the module's own namespace, else the end that sorts first,
      is C(name)), C(links) (the other ends' C(up), C(mtu), C(master)), C(addresses), C(routes), C(sysctls).
    - Left out, with the addresses and routes on them, are links C(node) cannot create (vxlan, tun, physical
      devices) and veths whose peer is in a namespace that was not reported; multipath routes are left out too.
  returned: always
  type: dict
missing:
  description: The requested namespaces that do not exist.
  returned: always
  type: list
  elements: str
  sample: [con9]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._info import DEFAULT_SYSCTLS, INCLUDE_CHOICES, Gatherer
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, pyroute2_import_error
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "netns": {"type": "list", "elements": "str"},
            "include": {
                "type": "list",
                "elements": "str",
                "choices": list(INCLUDE_CHOICES),
                "default": ["links", "addresses", "routes"],
            },
            "route_tables": {"type": "list", "elements": "raw", "default": ["main"]},
            "kernel": {"type": "bool", "default": False},
            "sysctls": {"type": "list", "elements": "str", "default": list(DEFAULT_SYSCTLS)},
        },
        supports_check_mode=True,
    )
    missing = pyroute2_import_error()
    if missing is not None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=missing)
    params = module.params
    try:
        with CachedSession() as session:
            facts = Gatherer(
                session,
                include=params["include"],
                tables=params["route_tables"],
                kernel=params["kernel"],
                sysctls=params["sysctls"],
            ).gather(params["netns"])
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
