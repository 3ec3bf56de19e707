# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab inventory plugin: names, the address formula, and a parse through ansible's own loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleParserError

from ansible_collections.cnfs.netlab.plugins.inventory.lab import auto_step, node_address, node_names


def test_default_names() -> None:
    assert node_names(2, "node{n}") == ["node1", "node2"]
    assert node_names("3", "n{n}-x") == ["n1-x", "n2-x", "n3-x"]
    assert node_names(["left", "right"], "ignored") == ["left", "right"]


@pytest.mark.parametrize(
    ("nodes", "pattern", "message"),
    [
        (0, "node{n}", "at least 1"),
        (True, "node{n}", "number of nodes or a list"),
        ([], "node{n}", "non-empty list"),
        (2, "node", "must contain {n}"),
        (["a", "a"], "x", "unique"),
        (["x" * 16], "x", "not usable"),
        (2, "a very long name{n}", "not usable"),
    ],
)
def test_bad_names(nodes: object, pattern: str, message: str) -> None:
    with pytest.raises(AnsibleParserError, match=message):
        node_names(nodes, pattern)


def test_the_talks_addresses() -> None:
    assert [node_address("10.0.0.0/24", i, 10, 10) for i in (1, 2)] == ["10.0.0.10/24", "10.0.0.20/24"]


def test_ten_and_twentyfive_nodes_fit_a_slash_24() -> None:
    assert node_address("10.0.0.0/24", 10, 10, 10) == "10.0.0.100/24"
    assert node_address("10.0.0.0/24", 25, 10, 10) == "10.0.0.250/24"
    with pytest.raises(AnsibleParserError, match=r"node 26 would get host number 260.*use a larger underlay"):
        node_address("10.0.0.0/24", 26, 10, 10)
    assert node_address("10.0.0.0/16", 26, 10, 10) == "10.0.1.4/16"
    assert node_address("10.0.0.0/24", 245, 10, 1) == "10.0.0.254/24"
    with pytest.raises(AnsibleParserError, match="beyond the last address"):
        node_address("10.0.0.0/24", 246, 10, 1)


def test_ipv6_underlay() -> None:
    assert node_address("fd00:10::/64", 2, 10, 10) == "fd00:10::14/64"


def test_bad_underlay() -> None:
    with pytest.raises(AnsibleParserError, match="is not a network"):
        node_address("10.0.0.1/24", 1, 10, 10)
    with pytest.raises(AnsibleParserError, match="1 or more"):
        node_address("10.0.0.0/24", 1, 0, 10)


REPO = Path(__file__).resolve().parents[4]


def _inventory(tmp_path: Path, text: str | None, source: Path | None = None) -> dict:
    """What ansible-inventory makes of a lab description (the CLI, so the collection loader is the real one)."""
    repo = REPO
    if source is None:
        (tmp_path / "lab.yml").write_text(text or "")
        source = tmp_path / "lab.yml"
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(repo / ".collections"),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    }
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(source), "--list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_parse_a_lab_description(tmp_path: Path) -> None:
    data = _inventory(tmp_path, "plugin: cnfs.netlab.lab\nlab: unit\nnodes: 3\ngroups:\n  first: node_index == 1\n")
    assert data["nodes"]["hosts"] == ["node1", "node2", "node3"]
    assert data["first"]["hosts"] == ["node1"]
    hostvars = data["_meta"]["hostvars"]["node2"]
    plain = {k: v["__ansible_unsafe"] if isinstance(v, dict) else v for k, v in hostvars.items()}
    assert plain["underlay_address"] == "10.0.0.20/24"
    assert plain["node_index"] == 2
    assert plain["ansible_connection"] == "cnfs.netlab.nsenter"
    assert plain["cnfs_netlab_lab"] == "unit"
    assert plain["cnfs_netlab_state_dir"] == "/run/cnfs-netlab"
    assert plain["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"


def test_parse_rejects_too_many_nodes(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        _inventory(tmp_path, "plugin: cnfs.netlab.lab\nnodes: 30\naddress_step: 10\n")
    assert "node 26 would get host number 260" in info.value.stderr
    with pytest.raises(subprocess.CalledProcessError) as info:
        _inventory(tmp_path, "plugin: cnfs.netlab.lab\nnodes: 300\n")
    assert "node 246 would get host number 255" in info.value.stderr


def test_parse_32_nodes_fit_the_default_underlay(tmp_path: Path) -> None:
    data = _inventory(tmp_path, "plugin: cnfs.netlab.lab\nnodes: 32\n")
    addresses = [_plain(data["_meta"]["hostvars"][f"node{i}"])["underlay_address"] for i in (1, 2, 32)]
    assert addresses == ["10.0.0.10/24", "10.0.0.11/24", "10.0.0.41/24"]


def _plain(hostvars: dict) -> dict:
    return {k: v["__ansible_unsafe"] if isinstance(v, dict) else v for k, v in hostvars.items()}


def test_shipped_inventories(tmp_path: Path) -> None:
    """inventory/netns is the talk's two nodes; inventory/netns3 three nodes in a lab of their own."""
    data = _inventory(tmp_path, None, REPO / "inventory" / "netns")
    assert data["nodes"]["hosts"] == ["node1", "node2"]
    hostvars = {h: _plain(v) for h, v in data["_meta"]["hostvars"].items()}
    assert {h: v["underlay_address"] for h, v in hostvars.items()} == {"node1": "10.0.0.10/24", "node2": "10.0.0.20/24"}
    assert {v["cnfs_netlab_lab"] for v in hostvars.values()} == {"netlab"}
    data = _inventory(tmp_path, None, REPO / "inventory" / "netns3")
    assert data["nodes"]["hosts"] == ["node1", "node2", "node3"]
    hostvars = {h: _plain(v) for h, v in data["_meta"]["hostvars"].items()}
    assert hostvars["node3"]["underlay_address"] == "10.0.0.30/24"
    assert {v["cnfs_netlab_lab"] for v in hostvars.values()} == {"netlab3"}


def test_a_node_keeps_its_own_index_when_another_is_removed() -> None:
    from ansible_collections.cnfs.netlab.plugins.inventory.lab import node_indexes, node_names

    nodes = [{"name": "node1", "index": 1}, {"name": "node3", "index": 3}]
    assert node_names(nodes, "node{n}") == ["node1", "node3"]
    assert node_indexes(nodes, ["node1", "node3"]) == [1, 3]
    assert node_indexes(["a", "b"], ["a", "b"]) == [1, 2]
    assert node_indexes(3, ["node1", "node2", "node3"]) == [1, 2, 3]
    with pytest.raises(AnsibleParserError, match="node indexes must be unique"):
        node_indexes([{"name": "a", "index": 2}, "b"], ["a", "b"])
    with pytest.raises(AnsibleParserError, match="node a: index 0 must be a whole number"):
        node_indexes([{"name": "a", "index": 0}], ["a"])


def test_address_step_left_out_fits_the_nodes_in_the_underlay():
    """32 nodes in the default /24 get consecutive addresses instead of failing at node 26 (issue 14)."""
    assert auto_step("10.0.0.0/24", 25, 10) == 10
    assert auto_step("10.0.0.0/24", 26, 10) == 1
    assert auto_step("10.0.0.0/24", 32, 10) == 1
    assert node_address("10.0.0.0/24", 32, 10, auto_step("10.0.0.0/24", 32, 10)) == "10.0.0.41/24"
    assert auto_step("10.0.0.0/16", 32, 10) == 10
