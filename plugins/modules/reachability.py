#!/usr/bin/python
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: reachability
short_description: Check from inside namespaces which addresses answer ICMP echo or TCP connects
version_added: 0.1.0
description:
  - Sends ICMP echo requests (IPv4 and IPv6) from raw sockets created inside the namespace, and/or opens TCP
    connections, to every target at once, and reports per target whether it answered, the round-trip time and
    what went wrong. No C(ping) command is run.
  - Each target is probed from O(netns), or from its own namespace O(targets[].netns), so one task checks the
    matrix of several sources (a node and each of its containers) in one module run.
  - Every probe of every namespace is sent first and one loop collects the answers (echo replies are matched by
    identifier, sequence number and the namespace that received them, ICMP errors by the request they quote), so a
    matrix of targets takes about as long as its slowest answer, not the sum.
  - A don't-fragment probe (O(targets[].dont_fragment)) sends a full-size echo with the DF bit set (for IPv6, no local
    fragmentation), by default as large as the MTU of the device the route to the target uses allows; it finds
    paths whose MTU is smaller than the sender's, which an ordinary echo does not.
  - Unreachable targets do not fail the task unless O(fail_on_unreachable) is set; they are reported in
    RV(results) and RV(unreachable_targets). So is a target whose own namespace O(targets[].netns) does not exist
    (its error says so); a missing O(netns) fails the task.
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - cnfs.netlab._attributes
  - cnfs.netlab._netns
attributes:
  check_mode:
    support: full
    details: The module only reads; it sends its probes in check mode too, and never reports a change.
  diff_mode:
    support: N/A
    details: The module never changes anything.
  idempotent:
    support: full
    details: It never changes anything; the results depend on the network.
options:
  targets:
    description:
      - What to check. Each item is checked once, concurrently with the others.
    type: list
    elements: dict
    required: true
    suboptions:
      address:
        description:
          - The IPv4 or IPv6 address to check. Names are not resolved.
          - An IPv6 link-local address (C(fe80::/10)) is probed without a zone (no C(%dev) suffix, which is
            refused); the kernel picks the interface, so it answers reliably only from a namespace with a single
            interface besides C(lo).
        type: str
        required: true
      name:
        description: A label for the results (defaults to the address).
        type: str
      icmp:
        description:
          - Whether to send ICMP echo requests.
          - Defaults to C(true) without O(targets[].tcp_port) and to C(false) with it; set it to C(true) to check both.
        type: bool
      tcp_port:
        description:
          - Open a TCP connection to this port (and close it at once). A refused connection means the host is up
            but the port is closed; the target is then not OK.
        type: int
      dont_fragment:
        description:
          - Send the echo requests with don't-fragment set and, unless O(targets[].size) is given, with the largest
            payload the route's device MTU allows (MTU - 28 for IPv4, MTU - 48 for IPv6).
        type: bool
        default: false
      size:
        description: ICMP payload bytes (like C(ping -s)); default 56, or the full size for O(targets[].dont_fragment).
        type: int
      count:
        description: Echo requests to send (1-100); the target is OK when at least one is answered.
        type: int
        default: 1
      timeout:
        description: Seconds to wait for each answer (more than 0, at most 60).
        type: float
        default: 1.0
      netns:
        description:
          - Send this target's probes from this network namespace instead of O(netns), either a name under C(/run/netns)
            or an absolute path to a namespace file, as for O(netns).
          - Omitted or empty, the target is probed from O(netns).
          - A namespace that does not exist does not fail the task (unless O(fail_on_unreachable) is set); the
            target's result is not OK, with the error C(network namespace 'NAME' does not exist), and nothing is
            sent for it. The module never creates a namespace.
        type: str
  fail_on_unreachable:
    description:
      - Fail the task when a target is not OK; the message lists every such target and its error.
    type: bool
    default: false
notes:
  - Needs root (raw sockets, entering namespaces).
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: cnfs.netlab.netlink_info
"""

EXAMPLES = r"""
- name: Check that con1 reaches its neighbours and the web server port of con2
  cnfs.netlab.reachability:
    netns: con1
    targets:
      - {name: con2, address: 10.0.0.11}
      - {name: gateway, address: 10.0.0.1}
      - {name: con2-web, address: 10.0.0.11, tcp_port: 80}
      - {name: remote con via overlay, address: 10.0.1.10, dont_fragment: true}
  register: reach

- name: Show what is unreachable
  ansible.builtin.debug:
    var: reach.unreachable_targets

- name: Check a node and its two containers in one module run (each target from its own namespace)
  cnfs.netlab.reachability:
    targets:
      - {name: node -> con1, address: 172.16.0.2}
      - {name: con1 -> con2, address: 172.16.0.3, netns: con1}
      - {name: con1 -> node2, address: 10.0.0.20, netns: con1}
      - {name: con2 -> con1, address: 172.16.0.2, netns: con2}
  register: matrix

- name: Show which source failed to reach what
  ansible.builtin.debug:
    msg: "{{ matrix.results | rejectattr('ok') | map(attribute='name') | list }}"

- name: Fail the play when the mesh is broken
  cnfs.netlab.reachability:
    netns: con1
    targets: "{{ peers | map('ansible.builtin.combine', {'count': 3}) }}"
    fail_on_unreachable: true
  vars:
    peers:
      - {name: con2, address: 10.0.0.11}
      - {name: con3, address: 10.0.1.10}
"""

RETURN = r"""
results:
  description: One result per target, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The label (the address when no name was given).
      type: str
      returned: always
    address:
      description: The address checked.
      type: str
      returned: always
    netns:
      description:
        - The namespace the probes were sent from (O(targets[].netns), else O(netns)); null for the namespace the
          module runs in.
      type: str
      returned: always
    ok:
      description: Whether every requested check succeeded.
      type: bool
      returned: always
    icmp:
      description: Whether ICMP echo was checked.
      type: bool
      returned: always
    sent:
      description: Echo requests sent.
      type: int
      returned: always
    received:
      description: Echo replies received.
      type: int
      returned: always
    size:
      description: ICMP payload bytes sent, null without ICMP or when the target's namespace does not exist.
      type: int
      returned: always
    dont_fragment:
      description: Whether the requests had don't-fragment set.
      type: bool
      returned: always
    tcp_port:
      description: The TCP port checked, or null.
      type: int
      returned: always
    tcp_ok:
      description: Whether the TCP connection was accepted; null when no port was checked (or could not be).
      type: bool
      returned: always
    rtt_ms:
      description: Mean echo round-trip time (else the TCP connect time) in milliseconds, or null.
      type: float
      returned: always
    error:
      description:
        - What went wrong, or null.
        - "For example C(icmp: no reply within 1 s), C(icmp: fragmentation needed, the path MTU is 1400),
          C(tcp port 80: ECONNREFUSED: Connection refused), C(network namespace 'con3' does not exist)."
      type: str
      returned: always
  sample:
    - {name: con2, address: 10.0.0.11, netns: con1, ok: true, icmp: true, sent: 1, received: 1, size: 56,
       dont_fragment: false, tcp_port: null, tcp_ok: null, rtt_ms: 0.061, error: null}
reachable_targets:
  description: Names of the targets that are OK (a name may repeat when several namespaces probe the same target).
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the probes took, all targets together (about the slowest answer or timeout, not the sum).
  returned: always
  type: float
  sample: 0.004
unreachable_targets:
  description:
    - Names of the targets that are not OK (a name may repeat when several namespaces probe the same target).
    - (Not C(unreachable), which Ansible reserves for hosts it cannot reach.)
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cnfs.netlab.plugins.module_utils._args import NETNS_ARG
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    pyroute2_import_error,
    validate_netns,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._reach import TARGET_SPEC, check_reachability


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **NETNS_ARG,
            "targets": {"type": "list", "elements": "dict", "required": True, "options": TARGET_SPEC},
            "fail_on_unreachable": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    missing = pyroute2_import_error()
    if missing is not None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=missing)
    netns = module.params["netns"]
    try:
        validate_netns(netns)
        with CachedSession() as session:
            start = time.monotonic()
            results = check_reachability(session, netns, module.params["targets"])
            elapsed = round(time.monotonic() - start, 3)
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    reachable = [r["name"] for r in results if r["ok"]]
    unreachable = [r["name"] for r in results if not r["ok"]]
    out = {
        "changed": False,
        "results": results,
        "reachable_targets": reachable,
        "unreachable_targets": unreachable,
        "elapsed": elapsed,
    }
    if module.params["fail_on_unreachable"] and unreachable:
        where = f" from netns {netns}" if netns else ""
        details = ", ".join(
            f"{r['name']} ({r['address']})"
            + (f" from netns {r['netns']}" if r["netns"] != netns else "")  # a target's own namespace
            + f": {r['error']}"
            for r in results
            if not r["ok"]
        )
        module.fail_json(msg=f"{len(unreachable)} of {len(results)} targets are unreachable{where}: {details}", **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
