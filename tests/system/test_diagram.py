# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagram of a running 2-node overlay lab, and the netlink_info -> node round trip on a lab node."""

from __future__ import annotations

from pathlib import Path

import pytest
from labtools import Lab


@pytest.fixture(scope="module")
def overlay_lab(lab_module_factory) -> Lab:
    lab = lab_module_factory(nodes=2)
    run = lab.up()
    assert run.rc == 0, run.output
    run = lab.playbook("playbooks/overlay.yml")
    assert run.rc == 0, run.output
    return lab


def test_diagram_names_every_node_namespace_bridge_and_tunnel(overlay_lab: Lab, tmp_path: Path) -> None:
    run = overlay_lab.playbook("playbooks/diagram.yml", "-e", f"diagram_dir={tmp_path}")
    assert run.rc == 0, run.output
    dot = (tmp_path / "lab.dot").read_text()
    mermaid = (tmp_path / "lab.mmd").read_text()
    # udp backend: one tun per peer, named after the peer.
    expected = [
        "node1  10.0.0.10",
        "node2  10.0.0.20",
        "netns con1",
        "netns con2",
        "br0 (bridge)",
        "tun-node2 (tun)",
        "tun-node1 (tun)",
        "underlay switch",
    ]
    for text in expected:
        assert text in dot, f"{text!r} missing from lab.dot"
    for text in ("netns con1", "br0 (bridge)", "tun-node2 (tun)", "<-.->|tun|"):
        assert text in mermaid, f"{text!r} missing from lab.mmd"
    assert (tmp_path / "lab.md").read_text().startswith("```mermaid\n")
    png = (tmp_path / "lab.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (tmp_path / "lab.svg").read_text().lstrip().startswith("<?xml")


def _stable(facts: dict, key: str) -> list[dict]:
    """con1's items without what the kernel picks anew (interface index, MAC)."""
    return [{k: v for k, v in item.items() if k not in ("index", "mac")} for item in facts["namespaces"]["con1"][key]]


def test_netlink_info_round_trip_recreates_a_deleted_namespace(overlay_lab: Lab) -> None:
    def gather() -> dict:
        run = overlay_lab.adhoc("node1", "cnfs.netlab.netlink_info", {"netns": ["", "con1"]})
        assert run.rc == 0, run.output
        return run.results["node1"]

    before = gather()
    assert before["namespaces"]["con1"]["routes"], "con1 should have its default route"
    node_view = before["node"]
    run = overlay_lab.adhoc("node1", "cnfs.netlab.netns", {"name": "con1", "state": "absent"})
    assert run.rc == 0, run.output
    assert gather()["missing"] == ["con1"]
    # The node view of both namespaces has the veth whose ends joined them (its node end on br0).
    assert any(v["peer_netns"] == "con1" or v["netns"] == "con1" for v in node_view["veths"]), node_view
    # The veth's other end lived on the node's bridge: it went with the namespace, and comes back with it.
    run = overlay_lab.adhoc("node1", "cnfs.netlab.node", dict(node_view))
    assert run.rc == 0 and run.results["node1"]["changed"], run.output
    after = gather()
    for key in ("links", "addresses", "routes"):
        assert _stable(after, key) == _stable(before, key), key
    # And the recreated container is back in the overlay.
    run = overlay_lab.playbook("playbooks/verify.yml")
    assert run.rc == 0, run.output
