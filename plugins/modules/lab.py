#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lab
short_description: Build or tear down the built-in lab, nodes emulated with namespaces on this host
version_added: 0.1.0
description:
  - Builds the built-in lab of cnfs.netlab on the host the module runs on (the controller, in the lab
    playbooks). Every node is a persistent set of network, mount and UTS namespaces, reached by Ansible
    through the P(cnfs.netlab.nsenter#connection) connection like a real host. One call builds or removes all nodes.
  - A node has its own hostname (its name), its own C(/run) (a tmpfs, so C(ip netns list) inside a node
    shows only that node's namespaces, and pid files are per node), a C(/sys) mounted from inside its
    network namespace (C(/sys/class/net) lists its links), and its mounts are private. Everything else
    of the file system (C(/etc), C(/tmp), C(/root), the binaries) is the host's.
  - A new node boots with the sysctls of a fresh Debian VM (O(sysctl)); a running node keeps whatever was
    changed inside it since; running the module again never resets them.
  - Each node's C(eth1) is one end of a veth pair; the other end, named after the node, is a port of the
    bridge C(underlay) in a namespace of its own (the underlay switch). Both ends are created directly in
    their namespaces. C(eth1) carries the node's underlay address; it is the only global address of that
    family on C(eth1) (another one is removed). Nothing is added to the host's own network namespace.
  - The lab consists of exactly the nodes given; nodes of the lab that are not listed any more are removed.
    A node found half-built (some of its namespace files missing) is removed and built again.
  - Removal (O(state=absent)) removes the whole lab, whatever O(nodes) says. Every process running in a node's
    namespaces or in the container namespaces mounted inside a node (tunnel daemons, C(ip netns exec)
    commands) is stopped by pid (SIGTERM, then SIGKILL after O(stop_timeout)), the links are deleted, the
    namespace files and the lab's mounts are removed. No C(ip) command is run; namespaces and mounts are
    made with system calls.
  - The files live under O(state_dir)/O(name) (see RV(lab)). Enter a node by hand with
    C(nsenter --net=/run/cnfs-netlab/netlab/node1/net --mount=/run/cnfs-netlab/netlab/node1/mnt
    --uts=/run/cnfs-netlab/netlab/node1/uts).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
options:
  name:
    description:
      - Name of the lab. Several labs can exist side by side; each node of a lab is reached with the same
        lab name in the C(cnfs_netlab_lab) variable of the P(cnfs.netlab.nsenter#connection) connection.
      - 1-64 letters, digits, C(_), C(.) or C(-).
      - Not C(overlay), C(sysctl-journal.json) or C(sysctl-journal.json.lock), the names under which modules run on the
        host keep their state in C(/run/cnfs-netlab).
    type: str
    default: netlab
  state:
    description:
      - V(present) builds the lab (and repairs or removes what differs); V(absent) removes all of it.
    type: str
    choices: [present, absent]
    default: present
  nodes:
    description:
      - The nodes of the lab, required with O(state=present). Ignored with O(state=absent).
      - The lab playbook builds this list from the inventory group C(nodes).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the node, its hostname and the name of its port on the underlay switch.
          - 1-15 letters, digits, C(_), C(.) or C(-) (a Linux interface name has at most 15 bytes).
        type: str
        required: true
      underlay_address:
        description:
          - Address with prefix of the node's C(eth1), for example V(10.0.0.10/24). Unique in the lab.
        type: str
        required: true
  state_dir:
    description:
      - Directory holding the namespace files of every lab, O(state_dir)/O(name)/<node>/{net,mnt,uts}.
      - The lab directory inside it is made a private mount of its own.
    type: path
    default: /run/cnfs-netlab
  sysctl:
    description:
      - Network sysctls (C(net.*)) a new node boots with, over the defaults
        C(net.ipv4.ip_forward=0), C(net.ipv4.conf.all.rp_filter=1), C(net.ipv4.conf.default.rp_filter=1).
      - Applied when a node is created; running nodes are left as they are.
    type: dict
    default: {}
  stop_timeout:
    description:
      - Seconds to wait after SIGTERM before SIGKILL, for processes still running in a node being removed.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: Reads the namespaces, mounts and links and reports what would change, without changing anything.
  diff_mode:
    support: full
    description: Shows every part of the lab (lab directory, switch, nodes, cables, addresses) before and after.
  idempotent:
    support: full
    description: A second run with the same nodes reports no change.
notes:
  - Needs root (C(CAP_SYS_ADMIN) and C(CAP_NET_ADMIN) on the host).
  - Runs on the host that holds the lab, normally the controller (C(hosts=localhost) in C(playbooks/lab.yml)).
  - Unlike the netlink modules, this module has no C(netns) option. The lab is built from the host's
    namespaces, and its own namespaces are given by O(state_dir) and O(name). For the same reason it is not
    in the C(cnfs.netlab.netlab) action group.
  - Nodes share the host's process list (C(pgrep) in one node sees the processes of the others) and its
    file system outside C(/run) and C(/sys).
requirements:
  - pyroute2 >= 0.9
seealso:
  - plugin: cnfs.netlab.nsenter
    plugin_type: connection
  - plugin: cnfs.netlab.lab
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Build the talk's two nodes
  cnfs.netlab.lab:
    nodes:
      - name: node1
        underlay_address: 10.0.0.10/24
      - name: node2
        underlay_address: 10.0.0.20/24

- name: Build the lab of the inventory group nodes (what playbooks/lab.yml does)
  cnfs.netlab.lab:
    name: "{{ hostvars[groups['nodes'][0]].cnfs_netlab_lab | default('netlab') }}"
    nodes: >-
      {{ dict(groups['nodes'] | zip(groups['nodes'] | map('extract', hostvars, 'underlay_address')))
         | dict2items(key_name='name', value_name='underlay_address') }}

- name: Remove the lab, its processes included
  cnfs.netlab.lab:
    state: absent
"""

RETURN = r"""
lab:
  description: Where the lab lives. With O(state=absent), C(nodes) is empty and C(underlay) is left out.
  returned: always
  type: dict
  contains:
    name:
      description: The lab name.
      type: str
    state_dir:
      description: The state directory.
      type: str
    path:
      description: The lab directory (a private mount).
      type: str
    underlay:
      description: The underlay switch, C(netns) (path of its network namespace file) and C(bridge).
      type: dict
      returned: when O(state=present)
    nodes:
      description: >-
        Per node: C(name), C(hostname), C(underlay_address), C(interface) (V(eth1)), C(port) (its port
        on the switch) and the namespace files C(net), C(mnt), C(uts).
      type: list
      elements: dict
  sample:
    name: netlab
    state_dir: /run/cnfs-netlab
    path: /run/cnfs-netlab/netlab
    underlay: {netns: /run/cnfs-netlab/netlab/underlay.net, bridge: underlay}
    nodes:
      - name: node1
        hostname: node1
        underlay_address: 10.0.0.10/24
        interface: eth1
        port: node1
        net: /run/cnfs-netlab/netlab/node1/net
        mnt: /run/cnfs-netlab/netlab/node1/mnt
        uts: /run/cnfs-netlab/netlab/node1/uts
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import run_lab


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": "netlab"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "nodes": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str", "required": True},
                    "underlay_address": {"type": "str", "required": True},
                },
            },
            "state_dir": {"type": "path", "default": "/run/cnfs-netlab"},
            "sysctl": {"type": "dict", "default": {}},
            "stop_timeout": {"type": "float", "default": 5},
        },
        required_if=[("state", "present", ["nodes"])],
        supports_check_mode=True,
    )
    run_lab(module)


if __name__ == "__main__":
    main()
