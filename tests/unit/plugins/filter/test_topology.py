# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology filters, on what netlink_info really returned from a 2-node vxlan overlay lab."""

from __future__ import annotations

import copy
import json
import pathlib
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cnfs.netlab.plugins.filter.topology import FilterModule, topology_dot, topology_mermaid
from ansible_collections.cnfs.netlab.plugins.plugin_utils._topology import build

FIXTURE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "overlay_vxlan_2nodes.json").read_text())


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"topology_dot", "topology_mermaid"}


def test_model_has_every_object_and_edge():
    topo = build(FIXTURE["infos"], FIXTURE["underlay"])
    assert topo.hosts == ["node1", "node2"]
    assert topo.namespaces["node1"] == ["", "con1", "con2"]
    kinds = {(i.host, i.name): i.kind for i in topo.ifaces.values()}
    assert kinds[("node1", "br0")] == "bridge"
    assert kinds[("node2", "vxlan0")] == "vxlan"
    styles = [e[2] for e in topo.edges]
    assert styles.count("veth") == 4  # two containers per node, each pair once
    assert styles.count("port") == 4
    assert styles.count("underlay") == 2
    assert styles.count("overlay") == 1  # node1 vxlan0 <-> node2 vxlan0, once
    overlay = next(e for e in topo.edges if e[2] == "overlay")
    assert {overlay[0], overlay[1]} == {"node1/-/vxlan0", "node2/-/vxlan0"}
    assert "172.16.1.0/24 via 172.16.1.0 dev vxlan0" in topo.routes[("node1", "")]


def test_dot_names_every_node_namespace_bridge_and_tunnel():
    dot = topology_dot(FIXTURE["infos"], FIXTURE["underlay"], "t")
    for text in (
        "node1  10.0.0.10",
        "node2  10.0.0.20",
        "netns con1",
        "netns con2",
        "br0 (bridge)",
        "vxlan0 (vxlan)",
        "underlay switch",
        "172.16.0.2/24",
        "172.16.1.3/24",
    ):
        assert text in dot, text


def test_mermaid_names_every_node_namespace_bridge_and_tunnel():
    text = topology_mermaid(FIXTURE["infos"], FIXTURE["underlay"], "t")
    assert text.splitlines()[3] == "flowchart TB"
    for item in ('["node1 10.0.0.10"]', '["netns con2"]', "br0 (bridge)", "vxlan0 (vxlan)", "<-.->|vxlan|"):
        assert item in text, item
    lines = [line.strip() for line in text.splitlines()]
    assert lines.count("end") == sum(line.startswith("subgraph") for line in lines) == 6


def test_a_missing_route_removes_the_overlay_edge():
    infos = copy.deepcopy(FIXTURE["infos"])
    infos["node2"]["namespaces"][""]["routes"] = []
    topo = build(infos, FIXTURE["underlay"])
    assert not [e for e in topo.edges if e[2] == "overlay"]


def test_bad_input_is_named():
    with pytest.raises(AnsibleFilterError, match=r"node1: not a result of cnfs\.netlab\.netlink_info"):
        topology_dot({"node1": {"changed": False}})
    with pytest.raises(AnsibleFilterError, match="take a dict"):
        topology_dot(["node1"])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is installed by make setup")
def test_graphviz_accepts_the_source(tmp_path):
    src = tmp_path / "lab.dot"
    src.write_text(topology_dot(FIXTURE["infos"], FIXTURE["underlay"]))
    png = tmp_path / "lab.png"
    subprocess.run(["dot", "-Tpng", "-o", str(png), str(src)], check=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_route_straight_into_a_tunnel_joins_the_tunnels():
    """The udp backend routes a peer's subnet into its tun without a gateway."""
    infos = copy.deepcopy(FIXTURE["infos"])
    for host, peer_subnet in (("node1", "172.16.1.0/24"), ("node2", "172.16.0.0/24")):
        for route in infos[host]["namespaces"][""]["routes"]:
            if route["dest"] == peer_subnet:
                route.update(gateway=None, onlink=False)
    topo = build(infos, FIXTURE["underlay"])
    assert "172.16.1.0/24 dev vxlan0" in topo.routes[("node1", "")]
    assert len([e for e in topo.edges if e[2] == "overlay"]) == 1
