# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stage planner (plugin_utils/_stage.py): plans of every stage for 1 to 33 nodes, validated by the node
module's own item validation, each bad setting refused with a message that names the setting and the node,
convergence against a recorded plan (the node module's prune, module_utils/_record.py) and the record's fixed
node indexes."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._node import build_resources
from ansible_collections.cnfs.netlab.plugins.module_utils._record import (
    KINDS,
    converge_resources,
    fixed_changes,
    recorded_resources,
)
from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import STAGES, plan_stage
from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import record as stage_record


def record(stage: str, plan: dict) -> dict:
    """The record a pruning apply of ``plan`` leaves: the stage's, plus the lists the node module applied."""
    return {**stage_record(stage, plan), "resources": recorded_resources(plan["resources"])}


def lab(n: int, **settings) -> dict[str, dict]:
    return {
        f"node{i}": {"node_index": i, "underlay_ip": f"10.0.{i // 250}.{i % 250 + 1}", **settings}
        for i in range(1, n + 1)
    }


def nodes(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def node_module_accepts(resources: dict) -> None:
    """The planned lists are valid input of cnfs.netlab.node (same validation, no resource listed twice)."""
    build_resources({**resources, "netns": None, "state": "present"}, existing_namespaces=[])


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("n", [1, 2, 3, 17, 33])
def test_every_stage_plans_valid_node_input(stage: str, n: int) -> None:
    plans = plan_stage(stage, nodes(n), lab(n))
    assert list(plans) == nodes(n)
    subnets = [ipaddress.ip_network(p["subnet"]) for p in plans.values()]
    assert len(set(subnets)) == n
    for i, plan in enumerate(plans.values(), start=1):
        assert plan["stage"] == stage and plan["index"] == i
        assert plan["subnet"] == f"172.16.{i - 1}.0/24"
        node_module_accepts(plan["resources"])
        res = plan["resources"]
        assert [c["name"] for c in plan["containers"]] == ["con1", "con2"]
        if stage == "network_namespace":
            assert plan["bridge"] is None and not res["bridges"]
            assert [c["address"] for c in plan["containers"]] == [f"172.16.{i - 1}.1", f"172.16.{i - 1}.2"]
        else:
            assert plan["bridge"]["address"] == f"172.16.{i - 1}.1"
            assert [c["address"] for c in plan["containers"]] == [f"172.16.{i - 1}.2", f"172.16.{i - 1}.3"]
        peer_routes = [r for r in res["routes"] if not r.get("netns") and r.get("gateway", "").startswith("10.0.")]
        assert len(peer_routes) == (n - 1 if stage == "multi_node" else 0)
        assert bool(res["overlays"]) == (stage == "overlay")
        if stage == "overlay":
            assert [p["name"] for p in res["overlays"][0]["peers"]] == nodes(n)
            assert all(v["mtu"] == 1472 for v in res["veths"])
        else:
            assert all(v["mtu"] == 1500 for v in res["veths"])


def test_one_description_for_every_stage_and_overrides() -> None:
    hv = lab(2, cnfs_netlab_subnet_base="10.244.0.0/16", cnfs_netlab_container_count=3, cnfs_netlab_backend="vxlan")
    for stage in STAGES:
        plan = plan_stage(stage, nodes(2), hv)["node2"]
        assert plan["subnet"] == "10.244.1.0/24"
        assert len(plan["containers"]) == 3
    overlay = plan_stage("overlay", nodes(2), hv)["node1"]
    assert overlay["resources"]["overlays"][0]["backend"] == "vxlan" and overlay["mtu"] == 1450
    udp = plan_stage("overlay", nodes(2), hv, overrides={"backend": "udp", "container_count": 1})["node1"]
    assert udp["resources"]["overlays"][0]["name"] == "tun" and len(udp["containers"]) == 1


def test_index_comes_from_the_node_not_its_position() -> None:
    hv = {
        "node1": {"node_index": 1, "underlay_ip": "10.0.0.10"},
        "node3": {"node_index": 3, "underlay_ip": "10.0.0.30"},
    }
    plans = plan_stage("multi_node", ["node1", "node3"], hv)
    assert plans["node3"]["subnet"] == "172.16.2.0/24"
    assert plans["node1"]["resources"]["routes"][-1] == {"dest": "172.16.2.0/24", "gateway": "10.0.0.30"}


def test_a_renumbering_is_refused_by_every_node_that_knew_the_node() -> None:
    hv = {h: {"underlay_ip": f"10.0.0.{i}0"} for i, h in ((1, "node1"), (2, "node2"), (3, "node3"))}
    three = plan_stage("single_node", ["node1", "node2", "node3"], hv)
    del hv["node2"]
    two = plan_stage("single_node", ["node1", "node3"], hv)  # positions: node3 moves to index 2
    message = (
        "node3: cnfs_netlab_node_index: the node was applied with index 3 and would now get 2 (its subnet would "
        "move): set node_index: 3 for it in the inventory, or run with -e cnfs_netlab_renumber=true"
    )
    for host in ("node1", "node3"):
        assert fixed_changes(record("single_node", three[host]), stage_record("single_node", two[host])) == [message]
    # explicit indexes keep them: nothing to refuse, node2's index is simply no longer planned
    hv["node3"]["node_index"] = 3
    kept = plan_stage("single_node", ["node1", "node3"], hv)
    assert not fixed_changes(record("single_node", three["node1"]), stage_record("single_node", kept["node1"]))
    assert kept["node1"]["node_indexes"] == {"node1": 1, "node3": 3}
    # a node added later is not in the old record: no refusal
    hv["node4"] = {"underlay_ip": "10.0.0.40", "node_index": 4}
    more = plan_stage("single_node", ["node1", "node3", "node4"], hv)
    assert not fixed_changes(record("single_node", kept["node1"]), stage_record("single_node", more["node1"]))


BAD = [
    ({"cnfs_netlab_subnet_base": "172.16.0.1/16"}, "node1: cnfs_netlab_subnet_base: '172.16.0.1/16' is not a network"),
    ({"cnfs_netlab_subnet_base": "fd00::/48"}, "cnfs_netlab_subnet_base: 'fd00::/48' is not an IPv4 network"),
    ({"cnfs_netlab_subnet_base": "nonsense"}, "cnfs_netlab_subnet_base: 'nonsense' is not a network"),
    ({"cnfs_netlab_subnet_base": "172.16.0.0/25"}, "cnfs_netlab_subnet_base: 172.16.0.0/25 is smaller than one /24"),
    ({"cnfs_netlab_subnet_prefix": 31}, "cnfs_netlab_subnet_prefix: 31 is out of range"),
    ({"cnfs_netlab_subnet_prefix": "x"}, "cnfs_netlab_subnet_prefix: 'x' is not a number"),
    (
        {"cnfs_netlab_subnet_prefix": 30, "cnfs_netlab_container_count": 3},
        "cnfs_netlab_container_count: 3 containers do not fit",
    ),
    ({"cnfs_netlab_container_count": 0}, "cnfs_netlab_container_count: 0 is out of range"),
    ({"cnfs_netlab_container_count": True}, "cnfs_netlab_container_count: True is not a number"),
    ({"cnfs_netlab_container_names": ["a", "a"]}, "cnfs_netlab_container_names: container names must be unique"),
    ({"cnfs_netlab_container_names": ["a/b"]}, "cnfs_netlab_container_names: 'a/b' is not a namespace name"),
    ({"cnfs_netlab_container_names": "con1"}, "cnfs_netlab_container_names: 'con1' is not a list"),
    ({"cnfs_netlab_container_prefix": ""}, "cnfs_netlab_container_prefix: '' is not a name prefix"),
    ({"cnfs_netlab_node_ifname": "veth"}, "cnfs_netlab_node_ifname: 'veth' must hold %d once"),
    ({"cnfs_netlab_container_ifname": "averyveryverylongname%d"}, "cnfs_netlab_container_ifname: container 1:"),
    ({"cnfs_netlab_bridge": "br 0"}, "cnfs_netlab_bridge:"),
    ({"cnfs_netlab_mtu": 100}, "cnfs_netlab_mtu: 100 is out of range"),
    ({"cnfs_netlab_backend": "gre"}, "cnfs_netlab_backend: 'gre' is not one of udp, vxlan, wireguard"),
    ({"cnfs_netlab_overlay_device": "x" * 20}, "cnfs_netlab_overlay_device:"),
    ({"cnfs_netlab_overlay_port": 70000}, "cnfs_netlab_overlay_port: 70000 is out of range"),
    ({"cnfs_netlab_overlay_vni": -1}, "cnfs_netlab_overlay_vni: -1 is out of range"),
    ({"cnfs_netlab_rp_filter": 1}, "cnfs_netlab_rp_filter: 1 must be 2 (loose) or 0 (off)"),
    ({"cnfs_netlab_node_index": 0}, "cnfs_netlab_node_index: 0 is out of range"),
    ({"cnfs_netlab_node_index": 300}, "cnfs_netlab_node_index: node index 300 has no subnet"),
    ({"cnfs_netlab_node_address": "not-an-ip"}, "cnfs_netlab_node_address: 'not-an-ip' is not an IP address"),
]


@pytest.mark.parametrize(("setting", "message"), BAD, ids=[next(iter(b[0])) + str(i) for i, b in enumerate(BAD)])
@pytest.mark.parametrize("stage", STAGES)
def test_each_bad_setting_names_itself_and_the_node(stage: str, setting: dict, message: str) -> None:
    hv = lab(2)
    hv["node1"].update(setting)
    with pytest.raises(NetlabError) as err:
        plan_stage(stage, nodes(2), hv)
    assert str(err.value).startswith("node1: "), err.value
    assert message in str(err.value)


def test_unknown_override_and_stage_and_shared_subnet() -> None:
    with pytest.raises(NetlabError, match="node1: cnfs_netlab_subnet: is not a setting"):
        plan_stage("overlay", nodes(1), lab(1), overrides={"subnet": "x"})
    with pytest.raises(NetlabError, match="stage 'stage5' is not one of"):
        plan_stage("stage5", nodes(1), lab(1))
    hv = lab(2)
    hv["node2"]["node_index"] = 1
    with pytest.raises(
        NetlabError, match="node2: cnfs_netlab_node_index: node2 and node1 have the same container subnet"
    ):
        plan_stage("overlay", nodes(2), hv)


# ---------------------------------------------------------------------------- convergence against the record
def keys(resources: dict, state: str | None = None) -> set:
    return {
        (kind, item.get("netns"), item.get("name") or item.get("dev") or item.get("dest"))
        for kind in KINDS
        for item in resources[kind]
        if state is None or item.get("state") == state
    }


@pytest.mark.parametrize("old", STAGES)
@pytest.mark.parametrize("new", STAGES)
def test_every_stage_over_every_stage_removes_exactly_what_only_the_record_holds(old: str, new: str) -> None:
    before = plan_stage(old, nodes(2), lab(2, cnfs_netlab_container_count=3))["node1"]
    after = plan_stage(new, nodes(2), lab(2, cnfs_netlab_subnet_base="10.244.0.0/16"))["node1"]
    out = converge_resources(after["resources"], record(old, before))
    node_module_accepts(out)  # nothing listed twice, every removal valid
    wanted = keys(after["resources"])
    removed = keys(out, "absent") | keys(out, "restored")
    assert not wanted & removed
    assert keys(out) - removed == wanted
    # con3 goes (with everything in it), and so does what only the old stage had
    assert ("namespaces", None, "con3") in removed
    assert not any(netns == "con3" for _kind, netns, _name in removed - {("namespaces", None, "con3")})
    if old != "network_namespace" and new == "network_namespace":
        assert ("bridges", None, "br0") in removed
    if old == "overlay" and new != "overlay":
        assert ("overlays", None, "tun") in removed and ("sysctls", None, "net.ipv4.conf.all.rp_filter") in removed
    if old in ("multi_node", "overlay") and new in ("network_namespace", "single_node"):
        assert ("sysctls", None, "net.ipv4.ip_forward") in removed
    if old == "multi_node" and new != "multi_node":
        assert ("routes", None, "172.16.1.0/24") in removed
    if old == new:
        # the same stage with a new subnet: only con3 and the routes to the old subnets go by name; the addresses
        # of the devices that stay are purged instead
        assert {kind for kind, _netns, _name in removed - {("namespaces", None, "con3")}} <= {"routes"}
        assert all(a.get("purge") for a in out["addresses"] if a.get("state") != "absent")


def test_backend_switch_removes_the_other_backend() -> None:
    udp = plan_stage("overlay", nodes(2), lab(2))["node1"]
    vxlan = plan_stage("overlay", nodes(2), lab(2, cnfs_netlab_backend="vxlan"))["node1"]
    out = converge_resources(vxlan["resources"], record("overlay", udp))
    assert [o for o in out["overlays"] if o.get("state") == "absent"] == [
        {"backend": "udp", "name": "tun", "state": "absent"}
    ]
    node_module_accepts(out)


def test_teardown_removes_all_the_record_holds_and_nothing_without_one() -> None:
    plan = plan_stage("overlay", nodes(3), lab(3))["node2"]
    out = converge_resources(None, record("overlay", plan))
    assert {i["name"] for i in out["namespaces"]} == {"con1", "con2"}
    assert out["bridges"] == [{"name": "br0", "state": "absent"}]
    assert out["overlays"] == [{"backend": "udp", "name": "tun", "state": "absent"}]
    assert {s["name"] for s in out["sysctls"]} == {"net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"}
    assert not out["addresses"] and not out["veths"]  # they go with their namespaces and the bridge
    assert converge_resources(None, None) == {kind: [] for kind in KINDS}
    build_resources({**out, "netns": None, "state": "absent"}, existing_namespaces=[])


def test_a_removed_peer_loses_its_route_and_tunnel() -> None:
    three = plan_stage("multi_node", nodes(3), lab(3))["node1"]
    hv = lab(3)
    del hv["node2"]
    two = plan_stage("multi_node", ["node1", "node3"], hv)["node1"]
    out = converge_resources(two["resources"], record("multi_node", three))
    assert {"dest": "172.16.1.0/24", "state": "absent"} in out["routes"]
    assert {"dest": "172.16.2.0/24", "gateway": "10.0.0.4"} in out["routes"]
