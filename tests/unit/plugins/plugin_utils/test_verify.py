# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify's checks, leftovers and table (plugin_utils/_verify.py), from plans of the stage planner."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cnfs.netlab.plugins.filter.stage import FilterModule, verify_table
from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import STAGES, plan_stage, record, recorded_plan
from ansible_collections.cnfs.netlab.plugins.plugin_utils._verify import checks, leftovers, table


def plans(stage: str, n: int, c: int = 2) -> dict:
    hv = {
        f"node{i}": {"node_index": i, "underlay_ip": f"10.0.0.{10 * i}", "cnfs_netlab_container_count": c}
        for i in range(1, n + 1)
    }
    return plan_stage(stage, list(hv), hv)


def expected(stage: str, n: int, c: int) -> int:
    """The size of the matrix, counted independently (as tests/system/test_stages.py does)."""
    if stage == "network_namespace":
        per_node = (n - 1) + c + c
    elif stage == "single_node":
        per_node = (n - 1) + 1 + c + c * (1 + 1 + c - 1)
    else:
        per_node = (n - 1) + n + n * c + c * (n + n + n * c - 1)
        if stage == "overlay":
            per_node += c * (n - 1) * c
    return n * per_node


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("n", "c"), [(1, 1), (2, 2), (3, 3)])
def test_the_matrix_has_the_stage_size(stage: str, n: int, c: int) -> None:
    p = plans(stage, n, c)
    assert sum(len(checks(p, host)) for host in p) == expected(stage, n, c)


def test_tcp_and_netns_of_each_source() -> None:
    p = plans("single_node", 1)
    targets = checks(p, "node1", tcp_port=8000)
    assert {
        "count": 1,
        "timeout": 1.0,
        "netns": "con1",
        "name": "node1 con2 tcp/8000",
        "address": "172.16.0.3",
        "tcp_port": 8000,
    } in targets
    assert all("netns" not in t for t in targets if t["name"] == "node1 br0" and t.get("netns") is None)


LINKS = [
    {"name": "eth1", "kind": "veth", "peer_netns": None},
    {"name": "br0", "kind": "bridge"},
    {"name": "veth10", "kind": "veth", "peer_netns": "con1"},
    {"name": "veth20", "kind": "veth", "peer_netns": "con2"},
]


def test_leftovers_of_another_stage_are_named() -> None:
    plan = plans("multi_node", 2)["node1"]
    clean = {
        "namespaces": {
            "": {"links": LINKS, "addresses": [{"dev": "br0", "addresses": ["172.16.0.1/24"]}]},
            "con1": {},
            "con2": {},
        }
    }
    assert leftovers(plan, clean) == []
    dirty = {
        "namespaces": {
            "": {
                "links": [
                    *LINKS,
                    {"name": "vxlan0", "kind": "vxlan"},
                    {"name": "tun-node2", "kind": "tun"},
                    {"name": "veth30", "kind": "veth", "peer_netns": "con3"},
                ],
                "addresses": [{"dev": "br0", "addresses": ["172.16.0.1/24", "10.244.0.1/24"]}],
            },
            "con1": {},
            "con2": {},
            "con3": {},
        }
    }
    assert leftovers(plan, dirty) == [
        "namespace con3",
        "vxlan device vxlan0",
        "tun device tun-node2",
        "veth veth30",
        "address 10.244.0.1/24 on br0",
    ]
    overlay = plans("overlay", 2)["node1"]
    assert leftovers(overlay, dirty) == [
        "namespace con3",
        "vxlan device vxlan0",
        "veth veth30",
        "address 10.244.0.1/24 on br0",
    ]


def test_table_fails_leftovers_another_stage_and_missing_records() -> None:
    p = plans("multi_node", 2)
    # As the node module writes them: the record of the plan, plus the resources it applied.
    records = {h: {**record("multi_node", plan), "resources": plan["resources"]} for h, plan in p.items()}
    reach = {
        h: {"results": [{**t, "ok": True, "rtt_ms": 0.1, "netns": t.get("netns")} for t in checks(p, h)]} for h in p
    }
    good = verify_table(records, ["node1", "node2"], reach, {}, "")
    assert good["failed"] == 0 and good["total"] == expected("multi_node", 2, 2)
    assert good["lines"][-1] == f"TOTAL   stage multi_node, {good['total']} checks, {good['total']} PASSED, 0 FAILED"
    info = {"namespaces": {"": {"links": [*LINKS, {"name": "wg0", "kind": "wireguard"}]}, "con1": {}, "con2": {}}}
    bad = verify_table(records, ["node1", "node2"], reach, {"node1": info}, "overlay")
    rows = [line for line in bad["lines"] if line.startswith("FAILED")]
    assert any("leftover" in r and "wireguard device wg0 (not of stage multi_node)" in r for r in rows), rows
    assert sum("the node holds stage multi_node, not overlay" in r for r in rows) == 2
    none = verify_table({"node1": None}, ["node1"], {}, {}, "")
    assert none["failed"] == 1 and "holds no applied stage" in none["lines"][1]
    assert table(["node1"], {}, {})["lines"][-1] == "TOTAL   stage none, 1 checks, 0 PASSED, 1 FAILED"


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "stage_plans",
        "stage_record",
        "verify_checks",
        "verify_table",
    }


def test_each_plan_of_the_filter_carries_its_record() -> None:
    hv = {f"node{i}": {"node_index": i, "underlay_ip": f"10.0.0.{10 * i}"} for i in (1, 2)}
    out = FilterModule().filters()["stage_plans"](hv, "overlay", ["node1", "node2"])
    bare = plan_stage("overlay", ["node1", "node2"], hv)
    for host, plan in out.items():
        assert {k: v for k, v in plan.items() if k != "record"} == bare[host]
        assert plan["record"] == record("overlay", bare[host])
        assert FilterModule().filters()["stage_record"](bare[host]) == plan["record"]


def test_the_plans_as_json_are_the_record_and_the_node_lists() -> None:
    hv = {f"node{i}": {"node_index": i, "underlay_ip": f"10.0.0.{10 * i}"} for i in (1, 2)}
    plans = FilterModule().filters()["stage_plans"](hv, "overlay", ["node1", "node2"])
    packed = FilterModule().filters()["stage_plans"](hv, "overlay", ["node1", "node2"], as_json=True)
    lists = ("namespaces", "bridges", "veths", "addresses", "routes", "sysctls", "overlays")
    for host, plan in plans.items():
        assert set(packed[host]) == {"backend", "record", *lists}
        assert all(isinstance(v, str) for v in packed[host].values())
        assert packed[host]["backend"] == plan["backend"] == "udp"
        assert json.loads(packed[host]["record"]) == plan["record"]
        for key in lists:
            assert json.loads(packed[host][key]) == plan["resources"].get(key, [])
    assert json.loads(packed["node1"]["overlays"])[0]["peers"], "the overlay and its peers are there"
    stage1 = FilterModule().filters()["stage_plans"](hv, "network_namespace", ["node1"], as_json=True)
    assert json.loads(stage1["node1"]["overlays"]) == [] and stage1["node1"]["backend"] == ""


def test_the_record_holds_the_plan_without_its_resources_and_gives_them_back() -> None:
    plan = plans("overlay", 2)["node1"]
    rec = record("overlay", plan)
    assert "resources" not in rec["plan"] and rec["plan"]["node"] == "node1"
    assert recorded_plan({**rec, "resources": plan["resources"]}) == plan
    # A record of an earlier release: the resources inside the plan, and none beside it.
    assert recorded_plan({**rec, "plan": plan}) == plan
    assert recorded_plan(rec)["resources"] == {}
