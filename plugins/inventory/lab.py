# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: lab
short_description: The nodes of a cnfs.netlab built-in lab, from a small lab description
version_added: 0.1.0
description:
  - "Reads a lab description (a YAML file whose name ends in C(lab.yml) or C(lab.yaml), with
    C(plugin: cnfs.netlab.lab)) and makes one host per node, in group O(group), reached through the
    P(cnfs.netlab.nsenter#connection) connection."
  - Node I(i) (1-based) is called O(node_name) with C({n}) replaced by I(i), and gets the underlay address
    number O(address_start) + O(address_step) * (I(i) - 1) of O(underlay). With the defaults that is the talk's
    C(node1) C(10.0.0.10/24) and C(node2) C(10.0.0.20/24), up to 25 nodes in a C(/24) (C(.10) ... C(.250)).
    Without O(address_step), more nodes than fit that way get consecutive addresses (step 1, C(.10), C(.11),
    ...), so that 32 nodes work in the default C(/24).
  - Nodes that do not fit even so (or with the O(address_step) given) fail the inventory with a message that
    says what to change. Set C(unparsed_is_failed = True) in the C([inventory]) section of C(ansible.cfg) (this
    collection's checkout does) so that C(ansible-playbook) stops at once with it instead of warning and
    running the play without the lab's hosts.
  - Host variables set for every node, C(underlay_address) (for example V(10.0.0.10/24)), C(underlay_ip)
    (V(10.0.0.10)) and C(node_index) (V(1)). Group variables of O(group), C(ansible_connection)
    (V(cnfs.netlab.nsenter)), C(ansible_python_interpreter) (O(python_interpreter)), C(cnfs_netlab_lab) and
    C(cnfs_netlab_state_dir); C(group_vars/) files next to the description override them.
  - C(playbooks/lab.yml) builds the lab of such an inventory with M(cnfs.netlab.lab).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; always V(cnfs.netlab.lab).
    type: str
    required: true
    choices: [cnfs.netlab.lab]
  lab:
    description: Name of the lab (the C(name) of M(cnfs.netlab.lab), the C(lab) of the connection).
    type: str
    default: netlab
  nodes:
    description:
      - The nodes, either how many (V(2) is the talk's lab) or a list of node names.
      - A list item may also be a dict C({name, index}); the index (default - the item's position) fixes the
        node's underlay address and, as C(node_index), its container subnet. Give every node its index when nodes
        may be removed from the middle of the list, so that the others keep theirs.
    type: raw
    default: 2
  node_name:
    description: Name of node I(i) when O(nodes) is a number; C({n}) is replaced by I(i).
    type: str
    default: node{n}
  group:
    description: The group every node belongs to; the lab playbooks act on this group.
    type: str
    default: nodes
  underlay:
    description: The underlay network, all nodes' C(eth1) are in it (IPv4 or IPv6).
    type: str
    default: 10.0.0.0/24
  address_start:
    description: Host number (in O(underlay)) of the first node's address.
    type: int
    default: 10
  address_step:
    description:
      - Difference between the host numbers of consecutive nodes.
      - Left out, V(10) when every node fits that way, else V(1).
    type: int
  state_dir:
    description: The lab state directory (C(state_dir) of M(cnfs.netlab.lab) and of the connection).
    type: str
    default: /run/cnfs-netlab
  python_interpreter:
    description:
      - The C(ansible_python_interpreter) of the nodes, a path.
      - Left out, it is the controller's Python, C(ansible_playbook_python), which has pyroute2; the nodes
        run on the controller host.
    type: str
"""

EXAMPLES = r"""
# inventory/netns/lab.yml: the talk's two nodes, node1 10.0.0.10/24 and node2 10.0.0.20/24
plugin: cnfs.netlab.lab
nodes: 2

# inventory/netns10/lab.yml: ten nodes, node1 .. node10 at 10.0.0.10 .. 10.0.0.100
# plugin: cnfs.netlab.lab
# nodes: 10

# Names of your own, another lab, and every node in a second group too
# plugin: cnfs.netlab.lab
# lab: edge
# nodes: [left, right]
# underlay: 192.168.50.0/24
# address_start: 1
# address_step: 1
# groups:
#   edge: true
"""

import ipaddress
import re
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.template import trust_as_template

CONNECTION = "cnfs.netlab.nsenter"
PYTHON = "{{ ansible_playbook_python }}"
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


def node_names(nodes: Any, pattern: str) -> list[str]:
    """The node names of a lab description (``nodes`` a count or a list of names)."""
    if isinstance(nodes, bool):
        raise AnsibleParserError(f"nodes must be a number of nodes or a list of names, not {nodes!r}")
    if isinstance(nodes, int) or (isinstance(nodes, str) and nodes.isdigit()):
        count = int(nodes)
        if count < 1:
            raise AnsibleParserError(f"nodes must be at least 1, not {count}")
        if "{n}" not in pattern:
            raise AnsibleParserError(f"node_name {pattern!r} must contain {{n}}, the node number")
        names = [pattern.replace("{n}", str(i)) for i in range(1, count + 1)]
    elif isinstance(nodes, list) and nodes:
        names = [str(n["name"]) if isinstance(n, dict) and "name" in n else str(n) for n in nodes]
    else:
        raise AnsibleParserError(f"nodes must be a number of nodes or a non-empty list of names, not {nodes!r}")
    for name in names:
        if not _NODE_NAME.match(name) or name == "underlay.net":
            raise AnsibleParserError(
                f"node name {name!r} is not usable: 1-15 letters, digits, '_', '.' or '-', starting with a letter or "
                "digit (it is the node's hostname and the name of its port on the underlay switch)"
            )
    if len(set(names)) != len(names):
        raise AnsibleParserError(f"node names must be unique: {names}")
    return names


def node_indexes(nodes: Any, names: list[str]) -> list[int]:
    """Each node's index: its own ``index`` in a ``nodes`` list of ``{name, index}``, else its position.

    The index fixes the node's underlay address and container subnet, so a node with an index of its own keeps
    them when another node is removed from the list."""
    indexes = []
    entries = nodes if isinstance(nodes, list) else names
    for position, (entry, name) in enumerate(zip(entries, names, strict=True), start=1):
        given = entry.get("index") if isinstance(entry, dict) else None
        if given is None:
            indexes.append(position)
            continue
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise AnsibleParserError(f"node {name}: index {given!r} must be a whole number, 1 or more")
        indexes.append(given)
    if len(set(indexes)) != len(indexes):
        raise AnsibleParserError(f"node indexes must be unique: {dict(zip(names, indexes, strict=True))}")
    return indexes


def auto_step(underlay: str, count: int, start: int) -> int:
    """The address_step left out: the talk's 10 when ``count`` nodes fit that way, else consecutive addresses."""
    try:
        node_address(underlay, count, start, 10)
    except AnsibleParserError:
        return 1
    return 10


def node_address(underlay: str, index: int, start: int, step: int) -> str:
    """The underlay address (with prefix) of node ``index`` (1-based)."""
    try:
        network = ipaddress.ip_network(underlay, strict=True)
    except ValueError as exc:
        raise AnsibleParserError(f"underlay {underlay!r} is not a network like 10.0.0.0/24: {exc}") from None
    if start < 1 or step < 1:
        raise AnsibleParserError("address_start and address_step must be 1 or more")
    host = start + step * (index - 1)
    last = network.num_addresses - (2 if network.version == 4 and network.prefixlen < 31 else 1)
    if host > last:
        raise AnsibleParserError(
            f"node {index} would get host number {host}, beyond the last address of the underlay {network} "
            f"(host number {last}): use a larger underlay (for example {network.supernet(new_prefix=16)} when "
            "it is IPv4), a smaller address_step, or fewer nodes"
        )
    return f"{network[host]}/{network.prefixlen}"


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "cnfs.netlab.lab"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("lab.yml", "lab.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        lab = str(self.get_option("lab"))
        group = str(self.get_option("group"))
        underlay = str(self.get_option("underlay"))
        start = int(self.get_option("address_start"))
        strict = self.get_option("strict")
        names = node_names(self.get_option("nodes"), str(self.get_option("node_name")))
        indexes = node_indexes(self.get_option("nodes"), names)
        given_step = self.get_option("address_step")
        # Every address is computed before the first host is added: one that does not fit stops the parse.
        step = auto_step(underlay, max(indexes), start) if given_step is None else int(given_step)
        addresses = {index: node_address(underlay, index, start, step) for index in indexes}

        self.inventory.add_group(group)
        group_vars = {
            "ansible_connection": CONNECTION,
            "ansible_python_interpreter": self.get_option("python_interpreter") or trust_as_template(PYTHON),
            "cnfs_netlab_lab": lab,
            "cnfs_netlab_state_dir": str(self.get_option("state_dir")),
        }
        for key, value in group_vars.items():
            self.inventory.set_variable(group, key, value)
        for index, name in zip(indexes, names, strict=True):
            self.inventory.add_host(name, group=group)
            self.inventory.set_variable(name, "node_index", index)
            self.inventory.set_variable(name, "underlay_address", addresses[index])
            self.inventory.set_variable(name, "underlay_ip", trust_as_template("{{ underlay_address.split('/')[0] }}"))
            host_vars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), host_vars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)
