# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transition matrix: a stage applied over any earlier stage, backend or setting leaves exactly what a fresh
apply leaves (issue 13).

Labs of two nodes: a walk (T) through every ordered pair of stages, both backend switches, a subnet and prefix
change with more containers and then fewer, in three segments on labs of their own; on another lab (R) a fresh apply
of each target (after a teardown, which the end of each segment proves to return the pristine nodes). After each
step of the walk the kernel state of every node and of every namespace in it (links, addresses, routes of every
table, rules, the overlay's FDB and permanent neighbour entries, namespaces, the nodes' processes, sysctls), read
with ``ip -j`` and /proc, equals R's for the same target; verify passes in the same run, and a third apply changes
nothing. Each step is ONE ansible-playbook run (stage, verify, stage again). On three nodes: removing the middle
node from the inventory is refused while it would renumber the last one, done with explicit indexes (the other nodes
end as a fresh apply leaves them), and the node is added back (all three end as before); a veth pair deleted behind
Ansible's back is recreated with the same MACs and verify passes in the same run; a device of another backend left
on a node fails verify with a row that names it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from labtools import Lab, Run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

SYSCTLS = ["net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"]
OVERLAY_KINDS = ("tun", "vxlan", "wireguard")

NN = ("network_namespace", {})
SN = ("single_node", {})
MN = ("multi_node", {})
OU = ("overlay", {})
OV = ("overlay", {"cnfs_netlab_backend": "vxlan"})
MB = (
    "multi_node",
    {"cnfs_netlab_subnet_base": "10.244.0.0/16", "cnfs_netlab_subnet_prefix": 25, "cnfs_netlab_container_count": 3},
)
MC = ("multi_node", {"cnfs_netlab_container_count": 1})
# Every ordered pair of the four stages (an Eulerian walk), both backend switches (OU -> OV, OV -> OU), then a
# subnet, prefix and container count change (NN -> MB: 3 containers) and fewer containers (MB -> MC).
WALK = [NN, SN, MN, OU, OV, NN, MN, SN, OV, OU, MN, NN, OU, SN, NN, MB, MC]
# Walked in three segments, so that both pytest workers share them (tests/system/conftest.py: the tests of this
# file are not kept together). Each segment starts where the one before ended: every transition of WALK is in one.
SEGMENTS = {"a": WALK[0:6], "b": WALK[5:11], "c": WALK[10:]}
SPREAD_TESTS = True


def key(config: tuple[str, dict[str, Any]]) -> str:
    return config[0] + json.dumps(config[1], sort_keys=True)


# ---------------------------------------------------------------------------------- kernel state
def _ns(netns: str | None) -> list[str]:
    return ["-n", netns] if netns else []


def _routes(lab: Lab, node: str, netns: str | None) -> list[str]:
    out = []
    for family in ("-4", "-6"):
        for route in lab.node_json(node, ["ip", *_ns(netns), family, "-j", "route", "show", "table", "all"]):
            dst = route.get("dst", "")
            # IPv6 link-local routes follow the random MACs of the veths, not the stage
            if family == "-6" and (dst.startswith(("fe80", "ff00")) or route.get("protocol") == "kernel"):
                continue
            out.append(
                json.dumps({k: v for k, v in route.items() if k not in ("expires", "cacheinfo")}, sort_keys=True)
            )
    return sorted(out)


def _namespace_state(lab: Lab, node: str, netns: str | None) -> dict[str, Any]:
    links = lab.node_json(node, ["ip", *_ns(netns), "-j", "-d", "link", "show"])
    state: dict[str, Any] = {
        "links": sorted(
            (
                link["ifname"],
                link.get("mtu"),
                sorted(f for f in link.get("flags", []) if f != "LOWER_UP" or not netns),
                link.get("master"),
                link.get("linkinfo", {}).get("info_kind"),
                link.get("link_netnsid") is not None,
                None if link["ifname"] == "eth1" else link.get("address"),  # eth1: the lab's, random
            )
            for link in links
        ),
        "addresses": sorted(
            (link["ifname"], f"{a['local']}/{a['prefixlen']}")
            for link in lab.node_json(node, ["ip", *_ns(netns), "-j", "addr", "show"])
            for a in link.get("addr_info", [])
            if not (a.get("family") == "inet6" and a.get("scope") == "link")
        ),
        "routes": _routes(lab, node, netns),
        "rules": sorted(
            json.dumps(rule, sort_keys=True)
            for family in ("-4", "-6")
            for rule in lab.node_json(node, ["ip", *_ns(netns), family, "-j", "rule", "show"])
        ),
    }
    if not netns:
        overlay = [link["ifname"] for link in links if link.get("linkinfo", {}).get("info_kind") in OVERLAY_KINDS]
        state["fdb"] = sorted(
            json.dumps({k: v for k, v in e.items() if k not in ("updated", "used")}, sort_keys=True)
            for dev in overlay
            for e in lab.node_json(node, ["bridge", "-j", "fdb", "show", "dev", dev])
        )
        state["neigh"] = sorted(
            json.dumps(e, sort_keys=True)
            for dev in overlay
            for e in lab.node_json(node, ["ip", "-j", "neigh", "show", "dev", dev, "nud", "permanent"])
        )
    return state


def kernel_state(lab: Lab, nodes: list[str] | None = None) -> dict[str, Any]:
    """Every node's state and that of every namespace in it, read with ip -j and /proc (not the collection)."""
    from test_stages import netns_names, node_processes

    out = {}
    for node in nodes or lab.nodes:
        namespaces = netns_names(lab, node)
        out[node] = {
            "node": _namespace_state(lab, node, None),
            "namespaces": {ns: _namespace_state(lab, node, ns) for ns in namespaces},
            "processes": node_processes(lab, node),
            "sysctls": {k: lab.node_run(node, ["cat", f"/proc/sys/{k}"]).stdout.strip() for k in SYSCTLS},
        }
    return out


def assert_same(want: dict[str, Any], got: dict[str, Any], what: str) -> None:
    diff = {
        f"{node} {part}": {"want": want[node][part], "got": got.get(node, {}).get(part)}
        for node in want
        for part in want[node]
        if want[node][part] != got.get(node, {}).get(part)
    }
    assert not diff, f"{what}:\n" + json.dumps(diff, indent=1, default=str)[:20000]


# ---------------------------------------------------------------------------------- runs
def run_ok(run: Run) -> Run:
    assert run.rc == 0, run.output[-20000:]
    return run


def extra(variables: dict[str, Any]) -> list[str]:
    return ["-e", json.dumps(variables)] if variables else []


def changed_in_last_play(run: Run) -> int:
    last = run.output.rsplit("\nPLAY [", 1)[-1].split("PLAY RECAP", 1)[0]
    return len(re.findall(r"^changed: \[", last, re.M))


def apply_verify_apply(lab: Lab, config: tuple[str, dict[str, Any]], *args: str) -> Run:
    """ONE run: the stage, verify, the stage again (which must change nothing)."""
    stage, variables = config
    book = f"playbooks/{stage}.yml"
    run = run_ok(lab.playbook(book, "playbooks/verify.yml", book, *extra(variables), *args))
    total = re.search(r"TOTAL +stage (\w+), (\d+) checks, (\d+) PASSED, (\d+) FAILED", run.output)
    assert total and total.group(1) == stage and total.group(4) == "0", run.output[-20000:]
    assert changed_in_last_play(run) == 0, run.output[-20000:]
    return run


# ---------------------------------------------------------------------------------- tests
# A fresh apply of each target, on a reference lab shared by the segments that run in this worker process.
FRESH: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def reference(lab_module_factory: Any) -> Any:
    ref = lab_module_factory(nodes=2)
    run_ok(ref.up())
    pristine = kernel_state(ref)

    def fresh(config: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        if key(config) not in FRESH:
            stage, variables = config
            run_ok(ref.playbook("playbooks/teardown.yml", f"playbooks/{stage}.yml", *extra(variables)))
            FRESH[key(config)] = kernel_state(ref)
        return FRESH[key(config)]

    yield fresh
    run_ok(ref.playbook("playbooks/teardown.yml"))
    assert_same(pristine, kernel_state(ref), "teardown of the reference lab")


# Six or seven transitions, each apply + verify + apply, and the fresh references: minutes on a 2-core machine,
# up to several times longer in a full make test than alone, so more than pytest's default limit of 600 s.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("segment", sorted(SEGMENTS))
def test_every_transition_converges_exactly(lab_factory: Any, reference: Any, segment: str) -> None:
    walk = lab_factory(nodes=2)
    run_ok(walk.up())
    pristine = kernel_state(walk)
    previous = None
    for config in SEGMENTS[segment]:
        apply_verify_apply(walk, config)
        assert_same(reference(config), kernel_state(walk), f"{previous} -> {config}")
        previous = config
    run_ok(walk.playbook("playbooks/teardown.yml"))
    assert_same(pristine, kernel_state(walk), "teardown after the walk")


def write_nodes(lab: Lab, nodes: list[Any]) -> None:
    text = (lab.inventory / "lab.yml").read_text()
    text = re.sub(r"^nodes: .*$", f"nodes: {json.dumps(nodes)}", text, flags=re.M)
    (lab.inventory / "lab.yml").write_text(text)


def test_nodes_removed_and_added_keep_their_identity(lab_factory: Any) -> None:
    lab = lab_factory(nodes=3)
    run_ok(lab.up())
    pristine = kernel_state(lab)
    try:
        apply_verify_apply(lab, OU)
        full = kernel_state(lab)
        # node2 removed from a plain list: node3 would move to index 2 (node2's subnet): refused, nothing changes
        write_nodes(lab, ["node1", "node3"])
        refused = lab.playbook("playbooks/overlay.yml")
        assert refused.rc != 0
        assert "node3: cnfs_netlab_node_index: the node was applied with index 3 and would now get 2" in refused.output
        assert_same(full, kernel_state(lab), "a refused renumbering")
        # with explicit indexes node1 and node3 drop node2 and end as a fresh apply of the two leaves them
        write_nodes(lab, [{"name": "node1", "index": 1}, {"name": "node3", "index": 3}])
        apply_verify_apply(lab, OU)
        removed = kernel_state(lab, ["node1", "node3"])
        run_ok(lab.playbook("playbooks/teardown.yml", "playbooks/overlay.yml"))
        assert_same(kernel_state(lab, ["node1", "node3"]), removed, "node2 removed from the middle")
        # node2 back (it still holds the three-node overlay): all three as after the first apply
        write_nodes(lab, ["node1", "node2", "node3"])
        apply_verify_apply(lab, OU)
        assert_same(full, kernel_state(lab), "node2 added back")
        # a repair verifies at once: the recreated pair has the same MACs (derived from the address), so the
        # neighbour entries of the bridge and of the other nodes' containers stay valid
        macs = lab.node_json("node1", ["ip", "-n", "con2", "-j", "link", "show", "veth21"])[0]["address"]
        lab.node_run("node1", ["ip", "link", "del", "veth20"])
        apply_verify_apply(lab, OU)
        assert lab.node_json("node1", ["ip", "-n", "con2", "-j", "link", "show", "veth21"])[0]["address"] == macs
        assert macs == "0a:58:ac:10:00:03"
        assert_same(full, kernel_state(lab), "repair")
        # leftovers of another backend (made by hand here) fail verify with a row that names them
        lab.node_run(
            "node1", ["ip", "link", "add", "vxlan0", "type", "vxlan", "id", "1", "dstport", "4789", "dev", "eth1"]
        )
        try:
            stale = lab.playbook("playbooks/verify.yml")
        finally:
            lab.node_run("node1", ["ip", "link", "del", "vxlan0"])
        assert stale.rc != 0
        assert re.search(r"FAILED +node1 +-> +leftover +- +vxlan device vxlan0 \(not of stage overlay\)", stale.output)
        total = re.search(r"TOTAL +stage overlay, (\d+) checks, (\d+) PASSED, 1 FAILED", stale.output)
        assert total and int(total.group(1)) == int(total.group(2)) + 1, stale.output[-5000:]
    finally:
        write_nodes(lab, ["node1", "node2", "node3"])
        run_ok(lab.playbook("playbooks/teardown.yml"))
    assert_same(pristine, kernel_state(lab), "teardown")
