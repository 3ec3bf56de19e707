# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Regression tests of the defects of issue 14, each asserting the kernel state read with `ip -j`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kernel import Namespaces, ip, links, node_params, run, run_node, snapshot, sysctl

from ansible_collections.cnfs.netlab.plugins.module_utils._info import Gatherer
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession


def veth(netns: str, a: str, b: str, mtu: int | None = None) -> None:
    cmd = ["ip", "-n", netns, "link", "add", a]
    if mtu:
        cmd += ["mtu", str(mtu)]
    subprocess.run([*cmd, "type", "veth", "peer", "name", b], check=True)


# ------------------------------------------------------------------ bridge MTU and ports
@pytest.mark.parametrize(("mtu", "port_mtu"), [(1450, 1500), (1500, 9000), (9000, 1500)])
def test_bridge_keeps_the_mtu_given_at_creation_when_a_port_joins(ns: Namespaces, mtu: int, port_mtu: int) -> None:
    (t,) = ns.make()
    veth(t, "p1", "q1", port_mtu)
    result = run("bridge", {"name": "brt", "netns": t, "mtu": mtu, "ports": ["p1"]})
    assert result["changed"] and result["after"]["mtu"] == mtu
    assert links(t)["brt"]["mtu"] == mtu
    assert links(t)["p1"]["master"] == "brt"
    assert not run("bridge", {"name": "brt", "netns": t, "mtu": mtu, "ports": ["p1"]})["changed"]
    veth(t, "p2", "q2", port_mtu)  # a port that joins later does not move it either
    run("link", {"name": "p2", "netns": t, "master": "brt"})
    assert links(t)["brt"]["mtu"] == mtu
    assert not run("bridge", {"name": "brt", "netns": t, "mtu": mtu})["changed"]


def test_node_bridge_mtu_survives_its_veths_joining(ns: Namespaces) -> None:
    a, b = ns.make(2)
    params = {
        "bridges": [{"name": "br0", "netns": a, "mtu": 1400}],
        "veths": [{"name": "v1", "netns": a, "peer": "eth0", "peer_netns": b, "bridge": "br0"}],
    }
    assert run_node(**params)["changed"]
    assert links(a)["br0"]["mtu"] == 1400
    assert links(a)["v1"]["master"] == "br0"
    assert not run_node(**params)["changed"]


def test_bridge_mtu_moved_by_a_joining_port_is_set_back(ns: Namespaces) -> None:
    """A bridge made without the module's pinning (plain `ip link add ... mtu`) follows a port that joins."""
    (t,) = ns.make()
    subprocess.run(["ip", "-n", t, "link", "add", "brx", "mtu", "1400", "type", "bridge"], check=True)
    veth(t, "p1", "q1", 1500)
    result = run("bridge", {"name": "brx", "netns": t, "mtu": 1400, "ports": ["p1"]})
    assert result["changed"]
    assert links(t)["brx"]["mtu"] == 1400
    assert not run("bridge", {"name": "brx", "netns": t, "mtu": 1400, "ports": ["p1"]})["changed"]


# ------------------------------------------------------------------ sysctl read back differently
def test_sysctl_value_read_back_differently_leaves_the_kernel_as_it_was(ns: Namespaces, journal: str) -> None:
    (t,) = ns.make()
    assert sysctl(t, "net.ipv4.ip_forward") == "0"
    params = {"name": "net.ipv4.ip_forward", "netns": t, "value": "01", "journal": journal}
    with pytest.raises(
        NetlabError, match=r"sysctl net\.ipv4\.ip_forward in netns .*reads it back as '1'.*'0' was put back"
    ):
        run("sysctl", params)
    assert sysctl(t, "net.ipv4.ip_forward") == "0"
    assert not Path(journal).exists() or json.loads(Path(journal).read_text())["entries"] == {}
    assert run("sysctl", {**params, "value": "1"})["changed"]
    assert sysctl(t, "net.ipv4.ip_forward") == "1"


# ------------------------------------------------------------------ link master of the wrong kind
@pytest.mark.parametrize("check", [True, False])
def test_link_master_that_is_a_veth_fails_early_naming_it(ns: Namespaces, check: bool) -> None:
    (t,) = ns.make()
    veth(t, "va", "vb")
    before = snapshot([t])
    with pytest.raises(
        NetlabError, match=r"link va in netns .*: master 'vb' in netns .* is a veth, which cannot have ports"
    ):
        run("link", {"name": "va", "netns": t, "master": "vb"}, check=check)
    assert snapshot([t]) == before
    assert "master" not in links(t)["va"]


# ------------------------------------------------------------------ netns removal and what goes with it
def test_netns_removal_diff_lists_the_veth_peers_it_removes(ns: Namespaces) -> None:
    a, b, c = ns.make(3)
    subprocess.run(["ip", "-n", a, "link", "add", "x", "type", "veth", "peer", "name", "y", "netns", b], check=True)
    subprocess.run(["ip", "-n", b, "link", "add", "br0", "type", "bridge"], check=True)
    subprocess.run(["ip", "-n", b, "link", "set", "y", "master", "br0"], check=True)
    subprocess.run(["ip", "-n", b, "address", "add", "10.9.0.1/24", "dev", "y"], check=True)
    subprocess.run(["ip", "-n", a, "link", "add", "s", "type", "veth", "peer", "name", "t"], check=True)  # same ns
    result = run("netns", {"name": a, "state": "absent"}, check=True)
    assert result["before"]["removes_peers"] == [
        {"name": "y", "netns": b, "bridge": "br0", "addresses": ["10.9.0.1/24"]}
    ]
    assert "y" in links(b)
    assert run("netns", {"name": a, "state": "absent"})["changed"]
    assert "y" not in links(b)
    assert not os.path.exists(f"/run/netns/{a}")
    assert c in os.listdir("/run/netns")


# ------------------------------------------------------------------ messages
def test_netns_given_as_a_regular_file_says_so(ns: Namespaces, tmp_path: Path) -> None:
    (t,) = ns.make()
    regular = tmp_path / "not-a-netns"
    regular.write_text("")
    before = snapshot([t])
    with pytest.raises(
        NetlabError, match=r"network namespace path '.*not-a-netns' is not a network namespace file"
    ) as err:
        run("bridge", {"name": "br0", "netns": str(regular)})
    assert "cnfs.netlab.netns name=/" not in str(err.value)
    with pytest.raises(NetlabError, match=r"network namespace path '/nonexistent/ns' does not exist"):
        run("bridge", {"name": "br0", "netns": "/nonexistent/ns"})
    assert snapshot([t]) == before


def test_node_same_address_twice_in_one_run_says_planned(ns: Namespaces) -> None:
    (t,) = ns.make()
    veth(t, "va", "vb")
    before = snapshot([t])
    with pytest.raises(
        NetlabError, match=r"10\.8\.0\.1/24 is also planned for interface va .*by an earlier item of this run"
    ):
        run_node(
            netns=t,
            addresses=[{"dev": "va", "addresses": ["10.8.0.1/24"]}, {"dev": "vb", "addresses": ["10.8.0.1/24"]}],
        )
    assert snapshot([t]) == before
    subprocess.run(["ip", "-n", t, "address", "add", "10.8.0.1/24", "dev", "va"], check=True)
    with pytest.raises(NetlabError, match=r"10\.8\.0\.1/24 is already on interface va "):
        run("address", {"dev": "vb", "netns": t, "addresses": ["10.8.0.1/24"]})


# ------------------------------------------------------------------ netlink_info fed back
def test_netlink_info_links_and_routes_fed_back_change_nothing(ns: Namespaces) -> None:
    a, b = ns.make(2)
    run_node(
        bridges=[{"name": "br0", "netns": a, "mtu": 1400, "stp": True}],
        veths=[{"name": "v1", "netns": a, "peer": "eth0", "peer_netns": b, "bridge": "br0", "mtu": 1400}],
        addresses=[{"dev": "eth0", "netns": b, "addresses": ["10.7.0.2/24"]}],
        routes=[
            {"dest": "10.70.0.0/16", "gateway": "10.7.0.1", "netns": b},
            {"dest": "default", "type": "blackhole", "netns": b},
        ],
    )
    before = snapshot([a, b])
    with CachedSession() as session:
        facts = Gatherer(session).gather([a, b])
    items = facts["namespaces"][a]["links"] + facts["namespaces"][b]["links"]
    assert {item["name"] for item in items} >= {"lo", "br0", "v1", "eth0"}
    for item in items:
        assert not run("link", item)["changed"], item
    routes = facts["namespaces"][b]["routes"]
    assert {r["scope"] for r in routes} <= {"universe", "link", "host"}
    for route in routes:
        assert not run("route", route)["changed"], route
    assert not run_node(**node_params(links=items))["changed"]
    assert not run("route", {**routes[0], "scope": "global"} if routes[0]["scope"] == "universe" else routes[0])[
        "changed"
    ]
    assert snapshot([a, b]) == before
    with pytest.raises(NetlabError, match=r"link v1 in netns .*: interface 'v1' .* is a veth, not a bridge"):
        run("link", {**next(i for i in items if i["name"] == "v1"), "kind": "bridge"})
    assert ip(a, "link", "show", "v1")[0]["mtu"] == 1400


# ------------------------------------------------------------------ shrunk by the property tests
def test_node_sysctl_of_a_missing_interface_in_a_new_namespace_changes_nothing(ns: Namespaces, journal: str) -> None:
    """Found by test_properties: the key was checked only once the namespace existed, so the run had already
    created the namespaces when it failed."""
    a, b = ns.name(), ns.name()
    with pytest.raises(NetlabError, match=r"sysctl net\.ipv4\.conf\.nodev0\.forwarding in netns .*'nodev0' does not"):
        run_node(
            namespaces=[a, b],
            sysctls=[{"name": "net.ipv4.conf.nodev0.forwarding", "value": "1", "netns": b, "journal": journal}],
        )
    with pytest.raises(NetlabError, match=r"sysctl net\.ipv4\.nosuchkey in netns .*does not exist"):
        run_node(namespaces=[a], sysctls=[{"name": "net.ipv4.nosuchkey", "value": "1", "netns": a, "journal": journal}])
    assert snapshot([a, b]) == {a: None, b: None}
