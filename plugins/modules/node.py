#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node
short_description: Apply the complete network state of a node in one task
version_added: 0.1.0
description:
  - Creates, changes or removes every namespace, bridge, veth pair, link setting, address, route, sysctl and
    overlay of a node in one task and one netlink session. Each list takes items shaped exactly like the
    options of the small module of that kind (M(cnfs.netlab.netns), M(cnfs.netlab.bridge), M(cnfs.netlab.veth),
    M(cnfs.netlab.link), M(cnfs.netlab.address), M(cnfs.netlab.route), M(cnfs.netlab.sysctl),
    M(cnfs.netlab.overlay)) and is validated by the same argument specification and the same resource models.
  - This is what makes the roles fast. Ansible spends about 0.3 s per task and host, so one task per object
    does not scale to hundreds of containers; this module applies them all at once, reading each namespace
    once and answering repeated lookups from a per-run cache.
  - Every item is checked before the first change (names, CIDRs, missing namespaces, conflicts with what
    exists or with what earlier items will create); bad input fails the task and changes nothing.
  - Order. Removals run first, in reverse dependency order. Then everything else runs in dependency order, that is
    namespaces, bridges, veths, links, addresses, routes, sysctls, overlays.
  - The output of M(cnfs.netlab.netlink_info) (RV(cnfs.netlab.netlink_info#module:node)) is valid input; it
    recreates the namespaces it reported.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
options:
  netns:
    description:
      - The namespace of every item that does not name its own C(netns).
      - Omit it to put such items in the namespace the module runs in (the managed node's own).
  record:
    description:
      - Data to record on the node after every item converged, as JSON in O(record_path). The stage roles record
        their plan there, so that the next apply knows what the collection owns on the node.
      - With O(prune), its C(resources) key is set to this task's lists (the items it creates or keeps), which a
        later pruning apply removes when it no longer lists them.
      - Its C(fixed) key, a dict of label to value, holds values an apply may not change silently. While
        O(record_fixed=enforce), a record whose C(fixed) gives a label of the recorded one another value fails the
        task before anything changes. C(fixed_message) words that error, with C({label}), C({old}) and C({new})
        (the stage roles fix every node's index there, so that a node's container subnet never moves by
        accident).
      - Written only when its content changes (which counts as a change of the task), never in check mode and
        never after a failed item. The file is replaced atomically, with mode C(0600); its directory is made
        when missing.
      - Omit it to record nothing. Refused with O(state=absent).
    type: dict
  record_path:
    description: The file of O(record), read by O(prune) and O(record_fixed).
    type: path
    default: /run/cnfs-netlab/stage.json
  record_fixed:
    description:
      - V(enforce) refuses a O(record) that changes a value of the recorded one's C(fixed) (see O(record)).
      - V(update) accepts the new values (the stage roles pass it for C(cnfs_netlab_renumber=true)).
    type: str
    choices: [enforce, update]
    default: enforce
  prune:
    description:
      - Also remove what the record at O(record_path) holds (its C(resources), written by an earlier pruning
        apply) and this task's lists no longer hold, so that an apply over any earlier one ends as a fresh apply
        would. What lives in a namespace, or on a device, that goes anyway is not removed one by one.
      - Items compare by their key (a namespace, bridge or veth by C(netns) and C(name), an address list by
        C(netns) and C(dev), a route by C(netns), C(dest), C(table) and C(metric), a sysctl by C(netns) and
        C(name), an overlay by C(netns), C(backend) and C(name)), as given; O(links) items are never recorded.
      - With O(state=absent), everything the record holds is removed, and then the record file.
      - The record is read in the same task, so that an apply takes one module run per node.
    type: bool
    default: false
  namespaces:
    description:
      - Named network namespaces, as plain names or as dicts with the options of M(cnfs.netlab.netns)
        (C(name), C(state)).
    type: list
    elements: raw
    default: []
  bridges:
    description: Bridges, each with the options of M(cnfs.netlab.bridge).
    type: list
    elements: dict
    default: []
  veths:
    description: Veth pairs, each with the options of M(cnfs.netlab.veth).
    type: list
    elements: dict
    default: []
  links:
    description:
      - Settings of existing interfaces (C(up), C(mtu), C(master)), each with the options of M(cnfs.netlab.link).
      - Skipped when O(state=absent).
    type: list
    elements: dict
    default: []
  addresses:
    description: Addresses of interfaces, each with the options of M(cnfs.netlab.address).
    type: list
    elements: dict
    default: []
  routes:
    description: Routes, each with the options of M(cnfs.netlab.route).
    type: list
    elements: dict
    default: []
  sysctls:
    description:
      - Per-namespace kernel parameters, each with the options of M(cnfs.netlab.sysctl).
      - An item with C(state=absent), or any item when O(state=absent), is C(state=restored) (its journaled
        original value is written back).
    type: list
    elements: dict
    default: []
  overlays:
    description: This node's ends of overlays, each with the options of M(cnfs.netlab.overlay).
    type: list
    elements: dict
    default: []
  state:
    description:
      - C(present) creates and updates the items (an item's own C(state) wins, so C(absent) removes that item).
      - C(absent) removes every item (sysctls are restored), whatever its own C(state).
    type: str
    choices: [present, absent]
    default: present
  purge_namespaces:
    description:
      - Also remove every namespace under C(/run/netns) whose name starts with O(namespace_prefix) and that is not
        listed in O(namespaces), so that a role that shrinks the number of containers cleans up after itself.
      - Removing a namespace removes its interfaces, and with them the peers of its veth pairs elsewhere.
    type: bool
    default: false
  namespace_prefix:
    description: The prefix of the namespaces this node owns; required by O(purge_namespaces).
    type: str
  rollback:
    description:
      - When the kernel refuses a change midway (a sysctl value it rejects, an MTU above a device's maximum,
        ...), put back what the run had changed before failing, last change first, the refused resource
        included. The message is the kernel's error followed by C(rolled back) and the resources put back.
      - Removals are not undone (what a removed namespace or veth held is gone); they run first, so a refusal
        later in the run leaves them done, and the message lists them under C(removals not undone).
      - Input that can be validated before the run (names, ranges, what exists) fails before anything changes,
        whatever this option.
      - V(false) leaves the node as the refused change found it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Validates everything and reports what would change, per resource, without changing anything.
  diff_mode:
    support: full
    description: The diff holds, keyed by resource, the before and after of every resource that changes.
  idempotent:
    support: full
notes:
  - Needs root.
  - "Keeps the compiled code of this collection's module_utils in C(~/.cache/cnfs-netlab/bytecode) on the node
    (C($XDG_CACHE_HOME)), one file per module, so that a run does not compile about 270 KB of source out of
    Ansible's module zip again (about 0.08 s per node and run). The cache is read only when it belongs to the
    user the module runs as and no one else can write it; deleting it is always safe. Set
    C(CNFS_NETLAB_BYTECODE_CACHE=0) in the task's C(environment) to turn it off, or a directory to put it there.
    The cache is not node state: a check-mode run writes it too, and teardown (O(state=absent)) leaves it."
  - "The bytecode in the module's payload (see the C(action) attribute) leaves out this collection's
    module_utils, which the cache on the node above serves."
  - The result's C(invocation) (shown with C(-vvv)) gives each list and the record as their number of items, not
    the items. They are the node's whole state, which Ansible would otherwise send back on every run.
  - The diff and RV(summary) name each resource the way the small modules do, for example
    C(veth veth-con1), C(address eth0 in netns con1), V(route default (inet\) table main metric 0 in netns con1).
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.netlink_info
  - module: cnfs.netlab.netns
  - module: cnfs.netlab.veth
  - module: cnfs.netlab.bridge
  - module: cnfs.netlab.address
  - module: cnfs.netlab.route
"""

EXAMPLES = r"""
- name: Two containers on a bridge (the talk's second stage)
  cnfs.netlab.node:
    namespaces: [con1, con2]
    bridges:
      - {name: br0}
    veths:
      - {name: veth-con1, peer: eth0, peer_netns: con1, bridge: br0}
      - {name: veth-con2, peer: eth0, peer_netns: con2, bridge: br0}
    addresses:
      - {dev: br0, addresses: [10.0.0.1/24]}
      - {dev: eth0, netns: con1, addresses: [10.0.0.10/24]}
      - {dev: eth0, netns: con2, addresses: [10.0.0.11/24]}
    routes:
      - {dest: default, gateway: 10.0.0.1, netns: con1}
      - {dest: default, gateway: 10.0.0.1, netns: con2}
    sysctls:
      - {name: net.ipv4.ip_forward, value: 1}

- name: Keep exactly the containers listed (con3 and higher go away)
  cnfs.netlab.node:
    namespaces: [con1, con2]
    purge_namespaces: true
    namespace_prefix: con

- name: Apply a node's plan and remove what the previous apply made that it no longer lists
  cnfs.netlab.node:
    namespaces: [con1]
    veths:
      - {name: veth-con1, peer: eth0, peer_netns: con1}
    prune: true
    record: {stage: mine}
    record_path: /run/my-lab/node.json

- name: Remove everything that record holds, then the record
  cnfs.netlab.node:
    state: absent
    prune: true
    record_path: /run/my-lab/node.json

- name: Remove all of it again
  cnfs.netlab.node:
    namespaces: [con1, con2]
    bridges:
      - {name: br0}
    sysctls:
      - {name: net.ipv4.ip_forward}
    state: absent
"""

RETURN = r"""
summary:
  description: Per kind of resource, how many were created, changed, removed and left unchanged.
  returned: always
  type: dict
  sample:
    netns: {created: 2, changed: 0, removed: 0, unchanged: 0}
    veth: {created: 2, changed: 0, removed: 0, unchanged: 0}
    address: {created: 3, changed: 0, removed: 0, unchanged: 0}
record_changed:
  description:
    - Whether O(record) changed the record file, or O(prune) with O(state=absent) removed it (in check mode,
      whether it would).
  returned: always
  type: bool
  sample: false
diff:
  description:
    - C(before) and C(after) of every resource that changes (or would, in check mode), keyed by resource;
      C(null) is absent. Resources that do not change are left out.
  returned: always
  type: dict
  sample:
    before: {"netns con1": null}
    after: {"netns con1": {name: con1, loopback: up}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._bytecode import install as install_bytecode_cache


def main() -> None:
    # Before the first import of the collection's module_utils: on a node that ran this module before, their code
    # comes from the cache instead of compiling the zip's sources again (module_utils/_bytecode.py).
    install_bytecode_cache()
    from ansible_collections.cnfs.netlab.plugins.module_utils._node import (  # pylint: disable=import-outside-toplevel
        argument_spec,
        run_node,
    )

    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("purge_namespaces", True, ("namespace_prefix",))],
        supports_check_mode=True,
    )
    run_node(module)


if __name__ == "__main__":
    main()
